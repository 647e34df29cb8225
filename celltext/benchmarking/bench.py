"""``celltext bench``: latency per stage, throughput, memory and parameters, in-process.

Latency is wall-clock at batch 1 after a warm-up, over ``iters`` distinct questions from a
release split, with the teacher's disk cache *off* (every question is really encoded).
The stages (:mod:`celltext.benchmarking.stages`) run in the same process on the same
questions, so ``ratio_end_to_end_to_retrieval`` compares like with like; ``targets`` says
which of the latency targets are met. Throughput is items per second at batch 64.

Memory is resident set size read from ``/proc/self/status``: ``VmRSS`` deltas around
loading, and per-phase peaks (``VmHWM`` after resetting it via ``/proc/self/clear_refs``;
where the reset is not permitted the peak is the process-lifetime high-water mark and
``memory.peak_reset_supported`` says so). Tracemalloc is not used: it does not see torch's
allocations.

Beside each stage, ``floors_ms``, ``stage_floor_ms`` and ``share_of_end_to_end``
(:mod:`celltext.benchmarking.floors`): the networks' calls alone, timed on the spot (one
teacher pass, one index scan, one core call, one decoder call), the least each stage can
cost here, and each stage's part of the end-to-end time.

The top level is the torch backend. With ``onnx`` (an export directory), or when the
model's export has been built (``celltext export onnx``), the report gains a key ``onnx``:
the same stages on the onnxruntime backend, and memory of both paths in fresh processes
(:mod:`celltext.benchmarking.onnx_compare`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from celltext.benchmarking.floors import floors_report
from celltext.benchmarking.onnx_compare import bench_onnx, check_onnx_dir
from celltext.benchmarking.resources import machine_info, process_peak_mb, rss_mb
from celltext.benchmarking.stages import Workload, bench_model, bench_retrieval, ratio_and_targets
from celltext.evaluation.systems import (
    GenerativeSystem,
    PredictorSystem,
    RetrievalSystem,
)
from celltext.inference.options import PredictorConfig
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
    options: PredictorConfig | None = None,
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
    work = Workload(questions[:iters], questions[:batch_size], max(1, min(5, iters // 10)), device)
    mem: dict[str, Any] = {"method": "RSS (/proc/self/status VmRSS, VmHWM)"}
    rss0 = rss_mb()
    teacher = load_teacher()
    mem["rss_teacher_load_delta_mb"] = _delta(rss0, rss_mb())
    retrieval = RetrievalSystem.from_release(release, teacher)
    stages = bench_retrieval(teacher, retrieval, work)
    report: dict[str, Any] = {"model": ref or "default", "iters": iters, "device": device}
    gen = None
    if ref != RETRIEVAL:
        rss1 = rss_mb()
        gen, predictor = _load_model(ref, release, device, with_predictor, options)
        mem["rss_model_load_delta_mb"] = _delta(rss1, rss_mb())
        report["system"] = gen.info()
        report["params"] = _params(gen)
        stages = stages | bench_model(gen, predictor, work)
        mem.update(stages.memory)
        report.update(ratio_and_targets(stages))
        report["targets"]["decoder_params_mb_le_150"] = report["params"]["decoder_mb"] <= 150.0
    mem["peak_rss_process_mb"] = process_peak_mb()
    report.update(
        latency_ms=stages.latency_ms,
        throughput_per_s={"batch_size": len(work.batch), **stages.throughput_per_s},
        memory=mem,
        machine=machine_info(),
    )
    model = None if gen is None else gen.predictor
    report.update(floors_report(teacher, work.timed, stages.latency_ms, retrieval.index, model,
                                device))  # fmt: skip
    if onnx is None and ref != RETRIEVAL and device == "cpu":
        onnx = _built_export(ref)
    if onnx is not None:
        report["onnx"] = bench_onnx(onnx, ref, release, work, threads, stages, with_predictor)
    return report


def _built_export(ref: str | None) -> Path | None:
    """The export ``celltext export onnx`` (or ``make demo``) built for ``ref``, if any."""
    from celltext.inference.loading import choose_backend

    kind, folder = choose_backend(ref, "auto")
    return folder if kind == "onnx" else None


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
