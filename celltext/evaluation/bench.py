"""``celltext bench``: latency per stage, throughput, memory and parameters, in-process.

Latency is wall-clock at batch 1 after a warm-up, over ``iters`` distinct questions from a
release split, with the teacher's disk cache *off* (every question is really encoded).
Stages: ``teacher`` (encode one question), ``core`` (one forward), ``decoder`` (greedy
generation + detokenisation of one embedding), ``generative`` (teacher -> core -> decoder,
no quality check), ``end_to_end`` (the serving Predictor: generative path + quality check +
fallback; what a user waits for) and ``retrieval`` (the nearest-neighbour baseline), all
in the same process on the same questions, so ``ratio_end_to_end_to_retrieval`` compares
like with like. Throughput is items per second at batch 64.

Memory is resident set size read from ``/proc/self/status``: ``VmRSS`` deltas around
loading, and per-phase peaks (``VmHWM`` after resetting it via ``/proc/self/clear_refs``;
where the reset is not permitted the peak is the process-lifetime high-water mark and
``memory.peak_reset_supported`` says so). Tracemalloc is not used: it does not see torch's
allocations.

With ``onnx`` the report gains a key ``onnx``: see :mod:`celltext.evaluation.bench_onnx`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from celltext.evaluation.bench_onnx import bench_onnx, check_onnx_dir
from celltext.evaluation.evaluate import measure_latency
from celltext.evaluation.resources import (
    machine_info,
    peak_delta,
    process_peak_mb,
    reset_peak,
    rss_mb,
    sync,
    throughput,
)
from celltext.evaluation.systems import (
    DecodeOptions,
    GenerativeSystem,
    PredictorSystem,
    RetrievalSystem,
)
from celltext.inference.records import RETRIEVAL

THROUGHPUT_BATCH = 64
_MB = 1024 * 1024
log = logging.getLogger(__name__)


# -- questions ------------------------------------------------------------------------------------
def _bench_questions(release: Any, n: int) -> list[str]:
    """``n`` distinct held-out questions (test_paraphrase, then val), cycled if too few."""
    qs: list[str] = []
    for split in ("test_paraphrase", "val", "test_unseen", "train"):
        qs.extend(p.question for p in release.pairs(split))
        if len(set(qs)) >= n:
            break
    qs = list(dict.fromkeys(qs))
    if not qs:
        raise ValueError(f"release {release.version} has no questions to benchmark with")
    return [qs[i % len(qs)] for i in range(n)]


# -- the benchmark -----------------------------------------------------------------------------
def run_bench(
    ref: str | None,
    release: Any,
    iters: int = 50,
    threads: int = 2,
    device: str = "cpu",
    with_predictor: bool = True,
    options: DecodeOptions | None = None,
    batch_size: int = THROUGHPUT_BATCH,
    onnx: str | Path | None = None,
) -> dict[str, Any]:
    """Measure every stage of ``ref`` and the retrieval baseline (see module docstring);
    with ``onnx`` (an export directory) also the onnxruntime path against PyTorch."""
    from celltext.teacher import load_teacher

    if ref != RETRIEVAL:  # fail on a bad reference before the slow teacher load
        from celltext.registry import resolve_model_ref

        resolve_model_ref(ref)
    if onnx is not None:
        check_onnx_dir(ref, onnx)
    torch.set_num_threads(threads)
    questions = _bench_questions(release, max(iters, batch_size))
    timed, batch = questions[:iters], questions[:batch_size]
    reps = max(1, min(5, iters // 10))
    mem: dict[str, Any] = {"method": "RSS (/proc/self/status VmRSS, VmHWM)"}
    rss0 = rss_mb()
    teacher = load_teacher()
    mem["rss_teacher_load_delta_mb"] = _delta(rss0, rss_mb())
    latency: dict[str, Any] = {}
    thr: dict[str, float] = {}

    latency["teacher"] = measure_latency(lambda q: teacher.encode([q], cache=False), timed)
    thr["teacher"] = throughput(lambda: teacher.encode(batch, cache=False), len(batch), reps)

    retrieval = RetrievalSystem.from_release(release, teacher)
    latency["retrieval"] = measure_latency(
        lambda q: retrieval.answer_texts([q], cache=False), timed
    )
    thr["retrieval"] = throughput(
        lambda: retrieval.answer_texts(batch, cache=False), len(batch), reps
    )
    report: dict[str, Any] = {"model": ref or "default", "iters": iters, "device": device}
    if ref != RETRIEVAL:
        rss1 = rss_mb()
        gen, predictor = _load_model(ref, release, device, with_predictor, options)
        mem["rss_model_load_delta_mb"] = _delta(rss1, rss_mb())
        report["system"] = gen.info()
        report["params"] = _params(gen)
        _bench_model(gen, predictor, timed, batch, reps, device, latency, thr, mem)
        e2e = latency.get("end_to_end", latency["generative"])
        report["ratio_end_to_end_to_retrieval"] = round(
            e2e["p50"] / max(latency["retrieval"]["p50"], 1e-9), 2
        )
        report["targets"] = {
            "end_to_end_p50_le_50ms": e2e["p50"] <= 50.0,
            "decoder_p50_le_20ms": latency["decoder"]["p50"] <= 20.0,
            "decoder_params_mb_le_150": report["params"]["decoder_mb"] <= 150.0,
        }
    mem["peak_rss_process_mb"] = process_peak_mb()
    report.update(
        latency_ms=latency,
        throughput_per_s={"batch_size": len(batch), **thr},
        memory=mem,
        machine=machine_info(),
    )
    if onnx is not None:
        report["onnx"] = bench_onnx(onnx, ref, gen.teacher, timed, batch, reps, threads)
    return report


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 2)


def _load_model(ref, release, device, with_predictor, options):
    from celltext.registry import resolve_model_ref
    from celltext.registry.checkpoint import load_checkpoint

    ckpt = load_checkpoint(resolve_model_ref(ref))
    gen = GenerativeSystem.from_checkpoint(ckpt, options, device=device, name=ref or "default")
    predictor = None
    if with_predictor and device == "cpu":
        predictor = PredictorSystem.from_ref(ref, gen, release)
    return gen, predictor


def _params(gen: GenerativeSystem) -> dict[str, Any]:
    info = gen.info()
    dec_bytes = sum(p.numel() * p.element_size() for p in gen.model.decoder.parameters())
    dec_bytes += sum(b.numel() * b.element_size() for b in gen.model.decoder.buffers())
    teacher_model = getattr(gen.teacher, "model", None)
    teacher_params = (
        sum(p.numel() for p in teacher_model.parameters()) if teacher_model is not None else None
    )
    return {
        "core": info["params_core"],
        "decoder": info["params_decoder"],
        "total_trainable": info["params_total"],
        "teacher_frozen": teacher_params,
        "decoder_mb": round(dec_bytes / _MB, 3),
    }


def _bench_model(gen, predictor, timed, batch, reps, device, latency, thr, mem) -> None:
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
