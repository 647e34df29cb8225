"""The bench stages on stand-in systems: every stage measured on the workload's questions,
results joined in stage order, ratio and targets from the joined results."""

from __future__ import annotations

import numpy as np
import pytest

from celltext.benchmarking.stages import (
    StageResults,
    Workload,
    bench_model,
    bench_retrieval,
    ratio_and_targets,
)


class _Teacher:
    dim = 4

    def __init__(self):
        self.calls: list[int] = []

    def encode(self, texts, cache=True):
        assert cache is False  # the bench always really encodes
        self.calls.append(len(texts))
        return np.ones((len(texts), self.dim), dtype=np.float32)


class _Answers:
    """Retrieval, generative system and predictor at once: answers, core, decode."""

    def __init__(self, teacher):
        self.teacher = teacher
        self.answered: list[int] = []

    def answer_texts(self, questions, cache=True):
        self.answered.append(len(questions))
        return ["a"] * len(questions)

    def core_embeddings(self, q):
        return np.asarray(q)  # (B, D)

    def decode(self, embs):
        return ["a"] * len(embs)


def test_stages_are_measured_on_the_workload_and_joined_in_order():
    teacher = _Teacher()
    system = _Answers(teacher)
    work = Workload(timed=["q1", "q2", "q3"], batch=["q1", "q2"], reps=1)
    retrieval = bench_retrieval(teacher, system, work)
    model = bench_model(system, system, work)
    joined = retrieval | model
    assert list(joined.latency_ms) == [
        "teacher", "retrieval", "core", "decoder", "generative", "end_to_end",
    ]  # fmt: skip
    assert all(lat["n"] == 3 for lat in joined.latency_ms.values())
    assert list(joined.throughput_per_s) == list(joined.latency_ms)
    assert all(v > 0 for v in joined.throughput_per_s.values())
    assert {"decoder_batch64_peak_delta_mb", "peak_reset_supported"} <= set(joined.memory)
    assert 1 in system.answered and 2 in system.answered  # batch 1 and the throughput batch
    assert retrieval.memory == {} and "end_to_end" not in retrieval.latency_ms  # unchanged


def test_without_a_predictor_the_generative_path_is_end_to_end():
    teacher = _Teacher()
    model = bench_model(_Answers(teacher), None, Workload(["q"], ["q"], 1))
    assert "end_to_end" not in model.latency_ms
    lat = {"p50": 2.0}
    results = StageResults(
        {"retrieval": {"p50": 1.0}, "decoder": {"p50": 9.0}, "generative": lat},
        {"generative": 600.0},
    )
    out = ratio_and_targets(results)
    assert out["ratio_end_to_end_to_retrieval"] == pytest.approx(2.0)
    targets = out["targets"]
    assert targets["end_to_end_p50_le_10ms"] and targets["end_to_end_batch64_ge_300_per_s"]
    assert targets["retrieval_p50_le_3ms"] and not targets["decoder_p50_le_3ms"]
    # where the decoder edits, its target is the production decoder's
    results.latency_ms["decoder_edit"] = {"p50": 2.5}
    assert ratio_and_targets(results)["targets"]["decoder_p50_le_3ms"]
