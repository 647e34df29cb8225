"""The int8 teacher: embeddings within cosine 0.98 of float32 on 50 real sentences, a
teacher id of its own (so its phrase bank is cached apart), an export that serves with the
selector fitted for it, a served export key of its own, and ``celltext teacher int8``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from serving_tiny import PAIRS
from typer.testing import CliRunner

from celltext.data.release import load_release
from celltext.export.teacher_int8 import int8_teacher_quality, sample_texts, teacher_agreement
from celltext.inference.export_files import verify_export
from celltext.inference.factory import load_predictor
from celltext.inference.onnx_backend import load_export
from celltext.teacher.int8 import agreement, int8_id, is_int8


@pytest.fixture(scope="module")
def int8_dir(fitted_ckpt, teacher, bank, tmp_path_factory):
    from celltext.export.onnx import export_model

    out = tmp_path_factory.mktemp("int8") / "teacher-int8"
    export_model(load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank), out, "int8")
    return out


def test_int8_embeddings_stay_within_cosine_098_of_float32(export_dir, int8_dir):
    texts = sample_texts(load_release("v1"), 50)
    assert len(set(texts)) == 50
    float_embs = load_export(export_dir).teacher.encode(texts)  # (50, 384)
    int8_embs = load_export(int8_dir).teacher.encode(texts)
    cos = np.sum(float_embs * int8_embs, axis=1)  # both L2-normalised
    assert cos.min() >= 0.98, cos.min()
    assert np.allclose(np.linalg.norm(int8_embs, axis=1), 1.0, atol=1e-5)
    report = teacher_agreement(export_dir, int8_dir, texts)
    assert report["n"] == 50 and report["min_cosine"] == pytest.approx(cos.min(), abs=1e-4)
    assert report["int8_teacher"] == "all-MiniLM-L6-v2-int8"


def test_the_int8_export_is_smaller_verified_and_its_own_teacher(export_dir, int8_dir):
    manifest = verify_export(int8_dir)
    float_manifest = verify_export(export_dir)
    assert manifest["teacher"]["id"] == int8_id(float_manifest["teacher"]["id"])
    assert manifest["teacher"]["float_id"] == float_manifest["teacher"]["id"]
    assert "int8" in manifest["teacher"]["quantized"]
    size = {
        d: sum(f.stat().st_size for f in d.glob("teacher.onnx*")) for d in (export_dir, int8_dir)
    }
    assert size[int8_dir] < size[export_dir] / 3
    for name in ("core.onnx", "decoder_step.onnx", "decoder_verify.onnx", "tokenizer.json"):
        assert manifest["files"][name] == float_manifest["files"][name]  # only the teacher
    assert manifest["model"] == float_manifest["model"]


def test_the_int8_export_takes_the_selector_fitted_for_it(fitted_ckpt, teacher, bank, tmp_path):
    """``selector_int8.json`` beside the checkpoint is the int8 export's selector; the
    float32 export keeps ``selector.json``; the served export's cache key follows both."""
    import shutil

    from celltext.export.onnx import _selector_for, export_model
    from celltext.inference.loading import export_dir_for
    from celltext.inference.selector import AnswerSelector
    from celltext.paths import default_model_dir

    ckpt = tmp_path / "ckpt"
    shutil.copytree(fitted_ckpt, ckpt)
    shutil.copy(default_model_dir() / "selector.json", ckpt / "selector.json")  # a fitted one
    keys = {t: export_dir_for(ckpt, t) for t in ("float32", "int8")}
    assert keys["float32"] != keys["int8"] and export_dir_for(ckpt) == keys["int8"]
    own = AnswerSelector.load(ckpt / "selector.json")
    own.abstain_below = 0.123  # an int8 selector that differs visibly
    own.save(ckpt / "selector_int8.json")
    assert export_dir_for(ckpt, "int8") != keys["int8"]  # refitted: a new served export
    assert export_dir_for(ckpt, "float32") == keys["float32"]
    pred = load_predictor(str(ckpt), teacher=teacher, bank=bank, backend="torch")
    export_model(pred, tmp_path / "int8", "int8")
    assert AnswerSelector.load(tmp_path / "int8" / "selector.json").abstain_below == 0.123
    assert _selector_for(pred, "float32") is pred.selector  # selector.json, as loaded
    with pytest.raises(ValueError, match="teacher must be one of"):
        export_model(pred, tmp_path / "bad", "fp16")


def test_the_int8_teacher_builds_its_own_phrase_bank(int8_dir, tmp_path, monkeypatch):
    from serving_tiny import tiny_release

    from celltext.paths import cache_dir

    monkeypatch.setenv("CELLTEXT_RELEASES", str(tmp_path / "releases"))
    tiny_release(tmp_path / "releases")
    pred = load_predictor(str(int8_dir), threshold=1.0)  # every answer falls back: bank needed
    assert pred.teacher.id == "all-MiniLM-L6-v2-int8" and pred.bank is not None
    banks = [p.name for p in (cache_dir() / "phrase_bank").glob("*.npz")]
    assert banks and all("int8" in name for name in banks), banks
    (row,) = pred.answer([PAIRS[6][0]])
    assert row.fallback and row.answer == PAIRS[6][1]


def test_int8_ids_and_agreement():
    assert int8_id("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2-int8"
    assert int8_id("all-MiniLM-L6-v2-int8") == "all-MiniLM-L6-v2-int8"
    assert is_int8("x-int8") and not is_int8("x")
    a = np.eye(3, dtype=np.float32)
    assert agreement(a, a)["min_cosine"] == 1.0 and agreement(a[:0], a[:0]) == {"n": 0}


def test_int8_teacher_quality_compares_the_three_paths(
    fitted_ckpt, export_dir, int8_dir, tmp_path, monkeypatch
):
    from serving_tiny import tiny_release

    monkeypatch.setenv("CELLTEXT_RELEASES", str(tmp_path / "releases"))
    release = load_release(str(tiny_release(tmp_path / "releases")))
    report = int8_teacher_quality(str(fitted_ckpt), export_dir, int8_dir, release, limit=3)
    assert set(report["paths"]) == {"pytorch", "onnx", "onnx-teacher-int8"}
    assert report["teachers"]["onnx-teacher-int8"].endswith("-int8")
    entry = report["paths"]["onnx-teacher-int8"]
    assert entry["identical"] + entry["different"] == report["questions"]
    assert 0.0 <= entry["semantic_similarity"] <= 1.0 + 1e-5
    assert "production_identical" in entry


def test_cli_teacher_int8_writes_the_export_and_the_agreement(fitted_ckpt, export_dir, tmp_path):
    import shutil

    from celltext.cli import app
    from celltext.inference.loading import export_dir_for

    cached = export_dir_for(fitted_ckpt, "float32")  # the float32 export it compares with,
    if not cached.exists():  # as built already (the module's): verified, then reused
        shutil.copytree(export_dir, cached)
    out = tmp_path / "int8"
    args = ["teacher", "int8", "--model", str(fitted_ckpt), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--sentences", "12", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["dir"] == str(out) and body["teacher"] == "all-MiniLM-L6-v2-int8"
    assert body["agreement"]["n"] == 12 and body["agreement"]["min_cosine"] >= 0.98
    assert body["size_mb"]["int8"] < body["size_mb"]["float32"]
    assert verify_export(out)["teacher"]["id"] == body["teacher"]
