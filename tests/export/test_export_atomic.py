"""Exports are written atomically and verified before reuse (hardening item 6): a re-export
replaces the old files instead of appending to ``teacher.onnx.data``, a killed export
leaves the previous one intact, and a broken cached export is rebuilt, not served."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from celltext.inference.export_files import ExportIntegrityError, verify_export


@pytest.fixture(scope="module")
def predictor(fitted_ckpt, teacher, bank):
    from celltext.inference.factory import load_predictor

    return load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank)


def _sizes(folder) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir()}


def _leftovers(folder) -> list[str]:
    """Hidden siblings of an export other than its lock file: temporary folders."""
    return sorted(
        p.name
        for p in folder.parent.iterdir()
        if p.name.startswith(".tmp-") or p.is_dir() and p.name.startswith(".")
    )


def test_reexport_replaces_the_files_instead_of_appending(predictor, export_dir, copy):
    from celltext.export.onnx import export_model

    export_model(predictor, copy)
    assert _sizes(copy)["teacher.onnx.data"] == _sizes(export_dir)["teacher.onnx.data"]
    verify_export(copy)
    assert _leftovers(copy) == []


def test_a_failed_export_leaves_the_previous_one_intact(predictor, copy, monkeypatch):
    """An export that dies half-way (here after the teacher and the core) changes nothing."""
    import celltext.export.onnx as onnx_export

    before = _sizes(copy)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a Ctrl-C would; a kill -9 leaves a temp folder only

    monkeypatch.setattr(onnx_export, "export_decoder", killed)
    with pytest.raises(KeyboardInterrupt):
        onnx_export.export_model(predictor, copy)
    assert _sizes(copy) == before
    verify_export(copy)
    assert _leftovers(copy) == []


def test_a_stale_temp_folder_of_a_killed_export_is_removed(predictor, copy):
    from celltext.export.onnx import export_model

    stale = copy.parent / f".tmp-deadbeef-{copy.name}"  # as a killed run names it
    stale.mkdir()
    (stale / "teacher.onnx.data").write_bytes(bytes(1000))
    export_model(predictor, copy)
    assert not stale.exists() and _leftovers(copy) == []


def test_a_folder_that_is_not_an_export_is_never_replaced(predictor, tmp_path):
    from celltext.export.onnx import export_model

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an ONNX export"):
        export_model(predictor, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_broken_cached_export_is_rebuilt(fitted_ckpt, export_dir, caplog):
    """``build_export`` (make demo) verifies the cached export; a damaged one is rebuilt."""
    from celltext.export.onnx import build_export
    from celltext.inference.loading import export_dir_for

    cached = export_dir_for(fitted_ckpt, "float32")  # the float32 export, as export_dir holds
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(export_dir, cached)
    data = cached / "teacher.onnx.data"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # as a killed writer left it
    with pytest.raises(ExportIntegrityError, match="teacher.onnx.data: sha256 mismatch"):
        verify_export(cached)
    with caplog.at_level(logging.WARNING, logger="celltext.export.onnx"):
        assert build_export(str(fitted_ckpt), "float32") == cached
    assert "rebuilding" in caplog.text and "sha256 mismatch" in caplog.text
    verify_export(cached)
    assert _sizes(cached)["teacher.onnx.data"] == _sizes(export_dir)["teacher.onnx.data"]


def test_cli_refuses_to_replace_a_folder_that_is_not_an_export(fitted_ckpt, tmp_path):
    from typer.testing import CliRunner

    from celltext.cli import app

    (tmp_path / "notes.txt").write_text("mine")
    args = ["export", "onnx", "-m", str(fitted_ckpt), "--out", str(tmp_path), "--no-parity"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 2, result.output
    assert "not an ONNX export" in json.loads(result.stdout)["error"]
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_damaged_cached_export_is_not_served_and_pytorch_answers(
    fitted_ckpt, export_dir, teacher, bank, caplog
):
    """``ask``/``serve`` pick a checkpoint's built export by themselves; a damaged one is
    refused by its manifest, and PyTorch answers instead (the caller named no export)."""
    from celltext.inference.factory import load_predictor
    from celltext.inference.loading import export_dir_for

    cached = export_dir_for(fitted_ckpt)
    shutil.rmtree(cached, ignore_errors=True)
    shutil.copytree(export_dir, cached)
    core = cached / "core.onnx"
    core.write_bytes(core.read_bytes()[:-16])  # truncated
    with caplog.at_level(logging.WARNING, logger="celltext.inference.factory"):
        pred = load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank)
    assert pred.backend.name == "torch" and "does not load" in caplog.text
    assert pred.answer(["What is backpropagation?"])[0].answer
    with pytest.raises(ExportIntegrityError, match="core.onnx"):
        load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank, backend="onnx")
    with pytest.raises(ExportIntegrityError, match="core.onnx"):
        load_predictor(str(cached), bank=bank)  # an export named by the caller
