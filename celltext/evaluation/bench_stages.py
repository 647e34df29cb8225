"""Per-stage latency and throughput of one predictor backend (``celltext bench``).

The same measurements run for the torch backend (the report's top level) and the
onnxruntime backend (the report's ``onnx`` key), on the same questions:

- ``teacher``: encode one question; ``retrieval``: the nearest-neighbour baseline (teacher
  + index look-up); ``core``: one forward; ``decoder``: greedy generation + detokenisation
  of one embedding (the plain decoder); ``generative``: teacher -> core -> decoder, no
  quality check; ``end_to_end``: the production Predictor (candidates, editing, quality
  check, selector; what a user waits for).

Latency is batch 1 after a warm-up; throughput is items per second at the bench batch size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from celltext.evaluation.evaluate import measure_latency
from celltext.evaluation.resources import peak_delta, reset_peak, sync, throughput

# The targets of the "one inference pipeline" issue (batch 1, warm; throughput at 64).
TARGETS = {"end_to_end_p50_ms": 15.0, "decoder_p50_ms": 5.0, "retrieval_p50_ms": 6.0,
           "end_to_end_to_retrieval": 2.5, "end_to_end_batch64_per_s": 500.0}  # fmt: skip


def bench_retrieval(teacher, retrieval, timed, batch, reps, latency, thr) -> None:
    """``teacher`` and ``retrieval`` stages into ``latency`` / ``thr``."""
    latency["teacher"] = measure_latency(lambda q: teacher.encode([q], cache=False), timed)
    thr["teacher"] = throughput(lambda: teacher.encode(batch, cache=False), len(batch), reps)
    latency["retrieval"] = measure_latency(
        lambda q: retrieval.answer_texts([q], cache=False), timed
    )
    thr["retrieval"] = throughput(
        lambda: retrieval.answer_texts(batch, cache=False), len(batch), reps
    )


def bench_model(gen, predictor, timed, batch, reps, device, latency, thr, mem) -> None:
    """``core``, ``decoder``, ``generative`` and ``end_to_end`` stages (``predictor`` None:
    no end-to-end stage) into ``latency`` / ``thr``, peak memory deltas into ``mem``."""
    teacher = gen.teacher
    q1 = np.asarray(teacher.encode(timed, cache=False), dtype=np.float32)  # (iters, D)
    qb = np.asarray(teacher.encode(batch, cache=False), dtype=np.float32)  # (64, D)
    core1 = gen.core_embeddings(q1)  # (iters, D)
    coreb = gen.core_embeddings(qb)  # (64, D)
    idx = [str(i) for i in range(len(timed))]

    def core_one(i: str) -> None:
        gen.core_embeddings(q1[int(i) : int(i) + 1])
        sync(device)

    # Memory first, while little else has been allocated and freed (see peak_delta).
    mem["decoder_batch64_peak_delta_mb"] = peak_delta(lambda: gen.decode(coreb))
    mem["generative_batch64_peak_delta_mb"] = peak_delta(
        lambda: gen.answer_texts(batch, cache=False)
    )
    latency["core"] = measure_latency(core_one, idx)
    thr["core"] = throughput(lambda: gen.core_embeddings(qb), len(qb), reps, device)
    latency["decoder"] = measure_latency(lambda i: gen.decode(core1[int(i) : int(i) + 1]), idx)
    thr["decoder"] = throughput(lambda: gen.decode(coreb), len(coreb), reps, device)
    mem["peak_reset_supported"] = reset_peak()
    latency["generative"] = measure_latency(lambda q: gen.answer_texts([q], cache=False), timed)
    thr["generative"] = throughput(
        lambda: gen.answer_texts(batch, cache=False), len(batch), reps, device
    )
    if predictor is not None:
        latency["end_to_end"] = measure_latency(lambda q: predictor.answer_texts([q]), timed)
        thr["end_to_end"] = throughput(lambda: predictor.answer_texts(batch), len(batch), reps)


def ratio_and_targets(latency: dict[str, Any], thr: dict[str, float]) -> dict[str, Any]:
    """``ratio_end_to_end_to_retrieval`` and which :data:`TARGETS` are met."""
    e2e = latency.get("end_to_end", latency["generative"])
    ratio = round(e2e["p50"] / max(latency["retrieval"]["p50"], 1e-9), 2)
    e2e_thr = thr.get("end_to_end", thr.get("generative", 0.0))
    return {
        "ratio_end_to_end_to_retrieval": ratio,
        "targets": {
            "end_to_end_p50_le_15ms": e2e["p50"] <= TARGETS["end_to_end_p50_ms"],
            "decoder_p50_le_5ms": latency["decoder"]["p50"] <= TARGETS["decoder_p50_ms"],
            "retrieval_p50_le_6ms": latency["retrieval"]["p50"] <= TARGETS["retrieval_p50_ms"],
            "end_to_end_to_retrieval_le_2_5": ratio <= TARGETS["end_to_end_to_retrieval"],
            "end_to_end_batch64_ge_500_per_s": e2e_thr >= TARGETS["end_to_end_batch64_per_s"],
        },
    }
