"""Fault injection on ONNX exports (issue 14, item 2): every file is verified against the
manifest before it is loaded; a tampered, truncated or invalid file is refused by name."""

from __future__ import annotations

import json
import shutil

import pytest
from serving_tiny import PAIRS
from typer.testing import CliRunner

from celltext.cli import app
from celltext.inference.export_files import ExportIntegrityError, verify_export
from celltext.inference.onnx_backend import load_export


def _swap_vocab(path, pairs: int = 25) -> None:
    tok = json.loads(path.read_text())
    vocab = tok["model"]["vocab"]
    names = sorted(vocab, key=vocab.get)[300 : 300 + 2 * pairs]
    for a, b in zip(names[::2], names[1::2], strict=True):
        vocab[a], vocab[b] = vocab[b], vocab[a]
    path.write_text(json.dumps(tok))


def _flip_bytes(path) -> None:
    data = bytearray(path.read_bytes())
    for i in (len(data) // 3, len(data) // 2):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _rewrite_manifest(folder) -> None:
    """Re-hash the folder as an exporter would (the damage is then hash-consistent)."""
    from celltext.export.publish import write_manifest

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("files")
    write_manifest(folder, manifest)


def test_a_good_export_verifies(export_dir):
    manifest = verify_export(export_dir)
    assert "manifest_sha256" in manifest and "core.onnx" in manifest["files"]


@pytest.mark.parametrize(
    ("file", "damage"),
    [
        ("tokenizer.json", _swap_vocab),
        ("core.onnx", _flip_bytes),
        ("decoder_step.onnx", _truncate),
        ("teacher_tokenizer.json", _truncate),
        ("teacher.onnx.data", _flip_bytes),
    ],
)
def test_damaged_file_is_refused_by_name(copy, file, damage):
    damage(copy / file)
    with pytest.raises(ExportIntegrityError, match=f"{file}: sha256 mismatch"):
        load_export(copy)


def test_truncated_onnx_with_matching_hash_is_a_clean_error(copy):
    _truncate(copy / "decoder_step.onnx")
    _rewrite_manifest(copy)
    with pytest.raises(ExportIntegrityError, match="decoder_step.onnx: does not load"):
        load_export(copy)


def test_invalid_tokenizer_with_matching_hash_is_a_clean_error(copy):
    (copy / "tokenizer.json").write_text('{"version": "1.0"}')
    _rewrite_manifest(copy)
    with pytest.raises(ExportIntegrityError, match="tokenizer.json: does not load"):
        load_export(copy)


def test_edited_manifest_and_unlisted_or_escaping_files_are_refused(copy):
    path = copy / "manifest.json"
    original = json.loads(path.read_text())
    edited = {**original, "files": {**original["files"], "core.onnx": "0" * 64}}
    path.write_text(json.dumps(edited))
    with pytest.raises(ExportIntegrityError, match="manifest.json: sha256 mismatch"):
        verify_export(copy)
    for edit, needle in (
        (lambda f: f.pop("core.onnx"), "core.onnx: not listed"),
        (lambda f: f.update({"../../etc/hostname": "0" * 64}), "etc/hostname: refused"),
    ):
        manifest = {k: v for k, v in original.items() if k != "manifest_sha256"}
        manifest["files"] = dict(original["files"])
        edit(manifest["files"])
        path.write_text(json.dumps(manifest))  # no self-hash: as an older export
        with pytest.raises(ExportIntegrityError, match=needle):
            verify_export(copy)


def test_symlink_leaving_the_export_is_refused(copy, tmp_path):
    outside = tmp_path / "outside.json"
    shutil.copy(copy / "tokenizer.json", outside)
    (copy / "tokenizer.json").unlink()
    (copy / "tokenizer.json").symlink_to(outside)
    with pytest.raises(ExportIntegrityError, match="tokenizer.json: refused"):
        verify_export(copy)


def test_cli_refuses_a_tampered_export_with_the_file_named(copy):
    _flip_bytes(copy / "core.onnx")
    result = CliRunner().invoke(app, ["ask", "--model", str(copy), "--no-fallback", PAIRS[0][0]])
    assert result.exit_code == 1
    assert "core.onnx: sha256 mismatch" in " ".join(result.output.split())
