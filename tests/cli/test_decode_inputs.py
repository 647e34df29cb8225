"""``celltext decode`` on bad input files (hardening item 11): each gets the JSON error
document and exit code 2, never a traceback; zero rows decode to no texts on both backends
without a model call; a single (D,) vector still decodes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from serving_tiny import PAIRS
from typer.testing import CliRunner

from celltext.cli import app

runner = CliRunner()
DIM = 384
pytestmark = pytest.mark.usefixtures("tiny_release_env")


@pytest.fixture(scope="module")
def export(fitted_ckpt, teacher, bank, tmp_path_factory):
    from celltext.export.onnx import export_model
    from celltext.inference.factory import load_predictor

    out = tmp_path_factory.mktemp("decode") / "export"
    export_model(load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank), out)
    return out


@pytest.fixture(params=["torch", "onnx"])
def model(request, fitted_ckpt):
    """The fitted tiny model as a checkpoint (PyTorch) or as its export (onnxruntime)."""
    return str(fitted_ckpt) if request.param == "torch" else str(request.getfixturevalue("export"))


def _decode(path, model: str):
    return runner.invoke(app, ["decode", "--input", str(path), "--model", model, "--json"])


def _npz(path):
    np.savez(path, emb=np.zeros((1, DIM), dtype=np.float32))


def _empty(path):
    path.write_bytes(b"")


def _huge_header(path):
    """A valid header claiming (100M, 384) float32 (143 GiB) over 64 bytes of data."""
    with path.open("wb") as fh:
        header = {"descr": "<f4", "fortran_order": False, "shape": (100_000_000, DIM)}
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(bytes(64))


def _complex(path):
    np.save(path, np.ones((1, DIM), dtype=np.complex64) * (0.05 + 0.05j))


@pytest.mark.parametrize(
    ("name", "write", "needle"),
    [
        ("emb.npz", _npz, ".npz archive"),
        ("empty.npy", _empty, "empty file"),
        ("huge.npy", _huge_header, "not a readable .npy array"),
        ("complex.npy", _complex, "complex64"),
    ],
)
def test_bad_files_get_the_json_error_document(fitted_ckpt, tmp_path, name, write, needle):
    path = tmp_path / name
    write(path)
    result = _decode(path, str(fitted_ckpt))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 2 and needle in doc["error"] and str(path) in doc["error"]


def test_zero_rows_decode_to_no_texts(model, tmp_path):
    path = tmp_path / "none.npy"
    np.save(path, np.zeros((0, DIM), dtype=np.float32))
    result = _decode(path, model)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["texts"] == []
    np.save(path, np.zeros((0, 100), dtype=np.float32))  # the dimension is still checked
    wrong = _decode(path, model)
    assert wrong.exit_code == 2 and "got shape (0, 100)" in json.loads(wrong.stdout)["error"]


def test_a_single_vector_still_decodes(model, teacher, tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, teacher.encode([PAIRS[2][1]])[0])  # (D,)
    result = _decode(path, model)
    assert result.exit_code == 0, result.output
    assert [t["text"] for t in json.loads(result.stdout)["texts"]] == [PAIRS[2][1]]
