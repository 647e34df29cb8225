"""The floors beside ``celltext bench``'s stages: the networks' calls alone, timed on the
spot, summed per stage, and each stage's share of the end-to-end time."""

from __future__ import annotations

import pytest

from celltext.benchmarking.floors import floors_report, measure_floors, shares, stage_floors

QUESTIONS = ["What is backpropagation?", "What is overfitting?", "What is a tokenizer?"]


def _summary(p50: float) -> dict[str, float]:
    return {"n": 3, "p50": p50, "p95": p50, "mean": p50, "max": p50}


def test_stage_floors_add_the_calls_each_stage_cannot_avoid():
    floors = {name: _summary(p50) for name, p50 in [
        ("teacher_pass", 2.0), ("index_scan", 0.9), ("index_search", 0.5), ("core_call", 1.0),
        ("decoder_call", 0.7), ("decoder_edit_call", 1.5), ("decoder_step", 0.3)]}  # fmt: skip
    assert stage_floors(floors) == {
        "teacher": 2.0, "retrieval": 2.5, "core": 1.0, "decoder": 0.7, "generative": 3.7,
        "end_to_end": 5.0,  # teacher + search + core + the decoder call with a prototype
    }  # fmt: skip
    teacher_only = {"teacher_pass": _summary(2.0), "index_search": _summary(0.5)}
    assert stage_floors(teacher_only) == {"teacher": 2.0, "retrieval": 2.5}


def test_shares_are_of_the_end_to_end_p50():
    lat = {"teacher": _summary(5.0), "decoder": _summary(10.0), "end_to_end": _summary(40.0)}
    assert shares(lat) == {"teacher": 0.125, "decoder": 0.25, "end_to_end": 1.0}
    assert shares({"generative": _summary(20.0), "core": _summary(2.0)})["core"] == 0.1
    assert shares({"teacher": _summary(1.0)}) == {}


def test_torch_floors_of_a_model(predictor, teacher, bank):
    floors = measure_floors(teacher, QUESTIONS, bank, predictor)
    assert set(floors) == {"teacher_pass", "index_scan", "index_search", "core_call",
                           "decoder_call", "decoder_step"}  # fmt: skip
    for name, summary in floors.items():
        assert summary["n"] == len(QUESTIONS) and summary["p50"] > 0, name
    assert set(measure_floors(teacher, QUESTIONS, bank)) == {
        "teacher_pass", "index_scan", "index_search",
    }  # fmt: skip


def test_an_editing_decoder_has_a_floor_with_a_prototype(teacher, bank, tmp_path):
    from serving_tiny import tiny_checkpoint

    from celltext.inference.factory import load_predictor

    ckpt = tiny_checkpoint(tmp_path / "edit", "mlp", "ret_edit")
    pred = load_predictor(str(ckpt), teacher=teacher, bank=bank, fallback=False)
    lat = {"teacher": _summary(3.0), "end_to_end": _summary(30.0)}
    report = floors_report(pred.teacher, QUESTIONS, lat, bank, pred)
    assert report["floors_ms"]["decoder_edit_call"]["p50"] > 0
    calls = {k: v["p50"] for k, v in report["floors_ms"].items()}
    assert report["stage_floor_ms"]["end_to_end"] == pytest.approx(
        calls["teacher_pass"] + calls["index_search"] + calls["core_call"]
        + calls["decoder_edit_call"], abs=1e-3
    )  # fmt: skip
    assert report["share_of_end_to_end"] == {"teacher": 0.1, "end_to_end": 1.0}
