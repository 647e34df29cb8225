"""ONNX export: the same predictor on onnxruntime stages gives the torch answers (plain,
edited, beam search); a torch-free path, int8, the report."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from serving_tiny import PAIRS

from celltext.export.parity import (
    parity_report,
    quantize_int8,
    report_markdown,
    tensorrt_check,
)
from celltext.inference.factory import load_predictor
from celltext.inference.onnx_backend import available_providers
from celltext.paths import DEFAULT_RELEASE

QUESTIONS = [q for q, _ in PAIRS] + ["Who wrote Hamlet?", "Explain gradient clipping."]


@pytest.fixture(scope="module")
def cli_export(fitted_ckpt, teacher, tmp_path_factory):
    """``celltext export onnx --teacher float32 --json`` of the fitted tiny model (the export
    that answers as PyTorch does), parity on a tiny release."""
    from serving_tiny import tiny_release
    from typer.testing import CliRunner

    from celltext.cli import app

    root = tmp_path_factory.mktemp("onnx")
    tiny_release(root / "releases")
    out = root / "tiny"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CELLTEXT_RELEASES", str(root / "releases"))
        args = ["export", "onnx", "--model", str(fitted_ckpt), "--out", str(out), "--json",
                "--teacher", "float32"]  # fmt: skip
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


@pytest.fixture(scope="module")
def exported(cli_export, fitted_ckpt, teacher, bank):
    from celltext.inference.factory import load_predictor

    out, _ = cli_export
    predictor = load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank)
    manifest = json.loads((out / "manifest.json").read_text())
    bank_path = bank.save(out.parent / "bank.npz")
    return predictor, out, manifest, bank_path


def test_export_writes_stepped_decoder_and_manifest(exported):
    _, out, manifest, _ = exported
    assert manifest["decoder"]["mode"] == "step"
    assert manifest["decoder"]["state"][0]["names"] == ["s0_k", "s0_v"]
    assert manifest["decoder"]["edits"] is False
    assert manifest["teacher"]["external_data"] == "teacher.onnx.data"  # weights beside it
    assert (
        (out / "teacher.onnx").stat().st_size
        < 1_000_000
        < (out / "teacher.onnx.data").stat().st_size
    )
    for name in ("teacher.onnx", "teacher.onnx.data", "core.onnx", "decoder_prefill.onnx",
                 "decoder_step.onnx", "tokenizer.json", "teacher_tokenizer.json"):  # fmt: skip
        assert name in manifest["files"] and (out / name).is_file()


def test_onnxruntime_matches_pytorch(exported, bank):
    predictor, out, _, _ = exported
    ort_pred = load_predictor(str(out), bank=bank)
    assert ort_pred.backend.name == "onnxruntime" and type(ort_pred) is type(predictor)
    torch_rows = predictor.answer(QUESTIONS)
    ort_rows = ort_pred.answer(QUESTIONS)
    assert [r.answer for r in ort_rows] == [r.answer for r in torch_rows]
    assert [r.fallback for r in ort_rows] == [r.fallback for r in torch_rows]
    assert ort_rows[0].model == "tiny-mlp-ret/0+onnx"
    report = parity_report(
        predictor, {"onnx": ort_pred}, QUESTIONS, None, split="tiny", latency_samples=3
    )
    assert report["paths"]["onnx"]["identical"] == len(QUESTIONS)
    assert report["paths"]["onnx"]["production_identical"] == len(QUESTIONS)  # served answers
    assert report["paths"]["onnx"]["teacher_max_abs_diff"] < 1e-4
    assert "| onnx | 10 (100.0%) | 0 |" in report_markdown(report)


def test_the_demo_summary_scores_the_onnxruntime_predictor(exported, bank, tmp_path, monkeypatch):
    """``make demo`` evaluates the served predictor itself: an export, no torch modules."""
    from serving_tiny import tiny_release

    from celltext.cli.demo import _eval_summary
    from celltext.data.release import load_release
    from celltext.evaluation.systems import GenerativeSystem

    _, out, _, _ = exported
    ort_pred = load_predictor(str(out), bank=bank)
    info = GenerativeSystem(ort_pred).info()
    assert info["backend"] == "onnxruntime" and info["core"] and info["decoder"]
    monkeypatch.setenv("CELLTEXT_RELEASES", str(tmp_path / "releases"))
    release = load_release(str(tiny_release(tmp_path / "releases")))
    summary = _eval_summary(ort_pred, release, 4)
    assert summary["n"] == len(release.pairs("test_paraphrase"))
    assert 0.0 <= summary["semantic_similarity"] <= 1.0 + 1e-6


def test_edit_decoder_and_beam_search_match_pytorch(teacher, bank, tmp_path):
    """A retrieve-and-edit decoder exports its prototype prefill; edited, plain and beam
    decodes of the same embeddings agree token for token with PyTorch."""
    from serving_tiny import tiny_checkpoint

    from celltext.export.onnx import export_model

    ckpt = tiny_checkpoint(tmp_path / "edit", "mlp", "ret_edit")
    torch_pred = load_predictor(str(ckpt), teacher=teacher, bank=bank)
    manifest = export_model(torch_pred, tmp_path / "edit-onnx")
    assert manifest["decoder"]["edits"] and "decoder_prefill_edit.onnx" in manifest["files"]
    ort_pred = load_predictor(str(tmp_path / "edit-onnx"), bank=bank)
    embs = bank.answer_embs[:5]
    for mode in ("edit", "generative"):
        assert [d.text for d in ort_pred.decode(embs, mode)] == [
            d.text for d in torch_pred.decode(embs, mode)
        ], mode
    beams = torch_pred.config.replace(decoding={"generation": {"num_beams": 3}})
    assert [d.text for d in ort_pred.decode(embs, "edit", beams)] == [
        d.text for d in torch_pred.decode(embs, "edit", beams)
    ]


def test_onnx_path_does_not_import_torch(exported):
    _, out, _, bank_path = exported
    code = textwrap.dedent(
        f"""
        import json, sys
        from celltext.inference.factory import load_predictor
        from celltext.index import RetrievalIndex
        p = load_predictor({str(out)!r}, bank=RetrievalIndex.load({str(bank_path)!r}))
        rows = p.answer({QUESTIONS[:2]!r})
        assert "torch" not in sys.modules, "torch was imported"
        print(json.dumps([r.answer for r in rows]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [a for _, a in PAIRS[:2]]


def test_int8_variant_answers(exported, bank, tmp_path):
    predictor, out, _, _ = exported
    q8 = quantize_int8(out, tmp_path / "int8")
    manifest = json.loads((q8 / "manifest.json").read_text())
    assert "core.onnx" in manifest["quantized"]["files"]
    assert (q8 / "core.onnx").stat().st_size < (out / "core.onnx").stat().st_size
    pred = load_predictor(str(q8), bank=bank)
    rows = pred.answer(QUESTIONS[:3])
    assert all(r.answer for r in rows)
    refs = [a for _, a in PAIRS[:3]]
    report = parity_report(predictor, {"onnx-int8": pred}, QUESTIONS[:3], refs, latency_samples=2)
    entry = report["paths"]["onnx-int8"]
    assert entry["identical"] + entry["different"] == 3
    assert 0.0 <= entry["semantic_similarity"] <= 1.0 + 1e-5


def test_tensorrt_skips_cleanly_without_it(exported):
    _, out, _, _ = exported
    result = tensorrt_check(out, QUESTIONS[:2])
    if "TensorrtExecutionProvider" not in available_providers():
        assert result["available"] is False and "providers" in result["reason"]
    else:  # pragma: no cover - GPU machines only
        assert result["available"] is True


def test_export_cli_writes_files_and_parity_report(cli_export):
    out, body = cli_export
    assert body["decoder_mode"] == "step" and "core.onnx" in body["files"]
    onnx_entry = body["parity"]["paths"]["onnx"]
    assert onnx_entry["identical"] == 2 and onnx_entry["different"] == 0
    assert body["parity"]["split"] == f"{DEFAULT_RELEASE}/test_paraphrase"
    assert json.loads((out / "parity.json").read_text())["questions"] == 2
    assert "celltext export onnx" in (out / "parity.md").read_text()


def test_from_ref_serves_an_export_directory(exported, tmp_path, monkeypatch):
    from serving_tiny import tiny_release

    monkeypatch.setenv("CELLTEXT_RELEASES", str(tmp_path / "releases"))
    tiny_release(tmp_path / "releases")
    _, out, _, _ = exported
    pred = load_predictor(str(out), threshold=1.0)  # every answer falls back: bank needed
    assert pred.backend.name == "onnxruntime" and pred.bank is not None
    (row,) = pred.answer([PAIRS[6][0]])
    assert row.fallback and row.answer == PAIRS[6][1]


def test_cli_ask_on_an_export_is_quiet_and_torch_free(exported, tmp_path, monkeypatch):
    """``celltext ask --model EXPORT``: the answer, one summary line, no log lines or
    progress bars, and torch never imported."""
    from serving_tiny import tiny_release

    monkeypatch.setenv("CELLTEXT_RELEASES", str(tmp_path / "releases"))
    tiny_release(tmp_path / "releases")
    _, out, _, _ = exported
    code = textwrap.dedent(
        f"""
        import sys
        from celltext.cli import main
        sys.argv = ["celltext", "ask", {PAIRS[1][0]!r}, "--model", {str(out)!r}]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == PAIRS[1][1]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "confidence" in lines[0] and "+onnx" in lines[0], lines


def test_a_built_export_is_chosen_for_its_checkpoint(fitted_ckpt, teacher, bank, tmp_path):
    from celltext.export.onnx import export_model
    from celltext.inference.loading import choose_backend, export_dir_for

    assert choose_backend(str(fitted_ckpt), "auto") == ("torch", None)
    with pytest.raises(FileNotFoundError, match="celltext export onnx --model"):
        choose_backend(str(fitted_ckpt), "onnx")
    built = export_dir_for(fitted_ckpt)
    export_model(load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank), built)
    assert choose_backend(str(fitted_ckpt), "auto") == ("onnx", built)
    assert choose_backend(str(fitted_ckpt), "torch") == ("torch", None)
    pred = load_predictor(str(fitted_ckpt), bank=bank)
    assert pred.backend.name == "onnxruntime"
    (row,) = pred.answer([PAIRS[3][0]])
    assert row.model.endswith("+onnx") and row.answer == PAIRS[3][1]
    with pytest.raises(ValueError, match="backend must be one of"):
        choose_backend(str(fitted_ckpt), "tensorflow")


def test_lattice_core_exports_its_activity_and_hybrid_decoder_state(
    lattice_ckpt, teacher, bank, tmp_path
):
    """The hybrid core + Mamba/attention decoder: same answers and lattice activity."""
    import numpy as np

    from celltext.export.onnx import export_model

    torch_pred = load_predictor(str(lattice_ckpt), teacher=teacher, bank=bank, fallback=False)
    manifest = export_model(torch_pred, tmp_path / "lattice")
    assert manifest["core"]["activity"] and "core_activity.onnx" in manifest["files"]
    ort_pred = load_predictor(str(tmp_path / "lattice"), bank=bank, fallback=False)
    assert [r.answer for r in ort_pred.answer(QUESTIONS[:3])] == [
        r.answer for r in torch_pred.answer(QUESTIONS[:3])
    ]
    a, b = ort_pred.activity(QUESTIONS[0]), torch_pred.activity(QUESTIONS[0])
    assert a["shape"] == b["shape"] == list(manifest["core"]["lattice_size"])
    assert np.allclose(a["values"], b["values"], atol=1e-3) and abs(a["max"] - b["max"]) < 1e-4
