"""Per-stage latency and throughput of one predictor backend (``celltext bench``).

The same measurements run for the torch backend (the report's top level) and the
onnxruntime backend (the report's ``onnx`` key), on the same :class:`Workload`:

- ``teacher``: encode one question; ``retrieval``: the nearest-neighbour baseline (teacher
  + index look-up); ``core``: one forward; ``decoder``: greedy generation + detokenisation
  of one embedding (the plain decoder, no prototype); ``decoder_edit``: the decoder as the
  production path runs it, editing the retrieved prototype (speculative: the prototype is
  the draft); ``generative``: teacher -> core -> decoder, no quality check;
  ``end_to_end``: the production Predictor (ranking, candidates, editing, quality check,
  selector; what a user waits for).

Latency is batch 1 after a warm-up; throughput is items per second at the bench batch size.
Each measurement returns a :class:`StageResults`; joining two keeps the stages in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from celltext.benchmarking.resources import peak_delta, reset_peak, sync, throughput
from celltext.evaluation.evaluate import measure_latency

# The targets of the "serve at the speed of the hardware" issue (batch 1, warm; throughput
# at 64). The decoder's is the production decoder's (``decoder_edit``) where it edits.
TARGETS = {"end_to_end_p50_ms": 10.0, "decoder_p50_ms": 3.0, "retrieval_p50_ms": 3.0,
           "end_to_end_batch64_per_s": 300.0}  # fmt: skip


@dataclass(frozen=True)
class Workload:
    """What every stage is measured on."""

    timed: list[str]
    """Questions timed one at a time (batch 1)."""
    batch: list[str]
    """The questions of one throughput call."""
    reps: int
    """Throughput repetitions (the best is kept)."""
    device: str = "cpu"
    """Where core and decoder run (``cuda`` work is synchronised before a clock is read)."""


@dataclass
class StageResults:
    """Latency summaries and throughput per stage, and memory figures, in measuring order."""

    latency_ms: dict[str, dict[str, Any]] = field(default_factory=dict)
    throughput_per_s: dict[str, float] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)

    def __or__(self, other: StageResults) -> StageResults:
        """These stages, then ``other``'s."""
        return StageResults(
            {**self.latency_ms, **other.latency_ms},
            {**self.throughput_per_s, **other.throughput_per_s},
            {**self.memory, **other.memory},
        )


def bench_retrieval(teacher: Any, retrieval: Any, work: Workload) -> StageResults:
    """The ``teacher`` and ``retrieval`` stages."""
    out = StageResults()
    out.latency_ms["teacher"] = measure_latency(
        lambda q: teacher.encode([q], cache=False), work.timed
    )
    out.throughput_per_s["teacher"] = throughput(
        lambda: teacher.encode(work.batch, cache=False), len(work.batch), work.reps
    )
    out.latency_ms["retrieval"] = measure_latency(
        lambda q: retrieval.answer_texts([q], cache=False), work.timed
    )
    out.throughput_per_s["retrieval"] = throughput(
        lambda: retrieval.answer_texts(work.batch, cache=False), len(work.batch), work.reps
    )
    return out


def bench_model(gen: Any, predictor: Any, work: Workload) -> StageResults:
    """The ``core``, ``decoder``, ``generative`` and ``end_to_end`` stages of ``gen`` (a
    :class:`~celltext.evaluation.systems.GenerativeSystem`) and ``predictor`` (a
    :class:`~celltext.evaluation.systems.PredictorSystem`; None: no end-to-end stage), with
    the peak memory of a batch decode and a batch answer."""
    out = StageResults()
    lat, thr, dev, n = out.latency_ms, out.throughput_per_s, work.device, len(work.batch)
    teacher = gen.teacher
    q1 = np.asarray(teacher.encode(work.timed, cache=False), dtype=np.float32)  # (iters, D)
    qb = np.asarray(teacher.encode(work.batch, cache=False), dtype=np.float32)  # (batch, D)
    core1 = gen.core_embeddings(q1)  # (iters, D)
    coreb = gen.core_embeddings(qb)  # (batch, D)
    idx = [str(i) for i in range(len(work.timed))]

    def core_one(i: str) -> None:
        gen.core_embeddings(q1[int(i) : int(i) + 1])
        sync(dev)

    # Memory first, while little else has been allocated and freed (see peak_delta).
    out.memory["decoder_batch64_peak_delta_mb"] = peak_delta(lambda: gen.decode(coreb))
    out.memory["generative_batch64_peak_delta_mb"] = peak_delta(
        lambda: gen.answer_texts(work.batch, cache=False)
    )
    lat["core"] = measure_latency(core_one, idx)
    thr["core"] = throughput(lambda: gen.core_embeddings(qb), n, work.reps, dev)
    lat["decoder"] = measure_latency(lambda i: gen.decode(core1[int(i) : int(i) + 1]), idx)
    thr["decoder"] = throughput(lambda: gen.decode(coreb), n, work.reps, dev)
    served = getattr(predictor, "predictor", None)  # the Predictor of a PredictorSystem
    if served is not None and served.edits and served.bank is not None:  # production decoder
        decoding, opts, bank = served.decoding, served.config.decoding, served.bank

        def prototypes(q_embs: np.ndarray) -> list[str]:  # the nearest known question's answer
            return [bank.answers[r] for r in bank.top_questions(q_embs, 1)[0][:, 0]]

        protos, protos_b = prototypes(q1), prototypes(qb)
        lat["decoder_edit"] = measure_latency(
            lambda i: decoding.generate(core1[int(i) : int(i) + 1], opts, [protos[int(i)]]), idx
        )
        thr["decoder_edit"] = throughput(
            lambda: decoding.generate(coreb, opts, protos_b), n, work.reps, dev
        )
    out.memory["peak_reset_supported"] = reset_peak()
    lat["generative"] = measure_latency(lambda q: gen.answer_texts([q], cache=False), work.timed)
    thr["generative"] = throughput(
        lambda: gen.answer_texts(work.batch, cache=False), n, work.reps, dev
    )
    if predictor is not None:
        lat["end_to_end"] = measure_latency(lambda q: predictor.answer_texts([q]), work.timed)
        thr["end_to_end"] = throughput(lambda: predictor.answer_texts(work.batch), n, work.reps)
    return out


def ratio_and_targets(results: StageResults) -> dict[str, Any]:
    """``ratio_end_to_end_to_retrieval`` and which :data:`TARGETS` are met."""
    latency, thr = results.latency_ms, results.throughput_per_s
    e2e = latency.get("end_to_end", latency["generative"])
    ratio = round(e2e["p50"] / max(latency["retrieval"]["p50"], 1e-9), 2)
    e2e_thr = thr.get("end_to_end", thr.get("generative", 0.0))
    decoder = latency.get("decoder_edit", latency["decoder"])
    return {
        "ratio_end_to_end_to_retrieval": ratio,
        "targets": {
            "end_to_end_p50_le_10ms": e2e["p50"] <= TARGETS["end_to_end_p50_ms"],
            "decoder_p50_le_3ms": decoder["p50"] <= TARGETS["decoder_p50_ms"],
            "retrieval_p50_le_3ms": latency["retrieval"]["p50"] <= TARGETS["retrieval_p50_ms"],
            "end_to_end_batch64_ge_300_per_s": e2e_thr >= TARGETS["end_to_end_batch64_per_s"],
        },
    }
