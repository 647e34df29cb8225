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

With ``onnx`` (``celltext bench --onnx DIR``, DIR written by ``celltext export onnx``) the
report gains a key ``onnx`` comparing the onnxruntime path with the PyTorch path, both as
the serving Predictor on CPU with greedy decoding and the fallback *off* (the export's
predictor settings, applied to both): ``onnx.latency_ms`` (p50/p95 at batch 1, warm, on the
same ``iters`` questions as ``latency_ms.end_to_end``), ``onnx.throughput_per_s`` at the
bench batch size, and the same for PyTorch under ``onnx.pytorch``. Memory is compared in
*fresh* subprocesses, one per path, that load only that path and answer the timed questions
at batch 1: ``onnx.peak_rss_mb`` and ``onnx.pytorch.peak_rss_mb`` are their ``VmHWM``, and
``torch_imported`` says whether torch got imported (never on the onnxruntime path). Ratios:
``onnx.ratio_p50_onnx_to_pytorch`` and ``onnx.ratio_peak_rss_onnx_to_pytorch``. This phase
runs last, after ``memory.peak_rss_process_mb`` is taken, so no existing key changes.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from celltext.evaluation.baselines import RETRIEVAL_REF, RetrievalBaseline
from celltext.evaluation.evaluate import measure_latency
from celltext.evaluation.systems import (
    DecodeOptions,
    GenerativeSystem,
    PredictorSystem,
    RetrievalSystem,
)

THROUGHPUT_BATCH = 64
_MB = 1024 * 1024
CHILD_TIMEOUT_S = 900
log = logging.getLogger(__name__)


# -- memory ------------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float | None:
    """Current resident set size in MB (``VmRSS``), or None off Linux."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024


_LIFETIME_PEAK_MB = 0.0  # largest VmHWM seen before any reset (a reset forgets it)


def reset_peak() -> bool:
    """Reset the ``VmHWM`` high-water mark to the current RSS; False if not permitted."""
    global _LIFETIME_PEAK_MB
    _LIFETIME_PEAK_MB = max(_LIFETIME_PEAK_MB, peak_mb() or 0.0)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float | None:
    """Peak resident set size in MB since the last :func:`reset_peak` (``VmHWM``)."""
    kb = _status_kb("VmHWM")
    return None if kb is None else kb / 1024


def process_peak_mb() -> float | None:
    """Peak resident set size of the whole process so far, across resets (MB)."""
    now = peak_mb()
    return None if now is None else round(max(now, _LIFETIME_PEAK_MB), 2)


def peak_delta(fn: Callable[[], Any]) -> float | None:
    """Peak RSS while running ``fn`` minus RSS just before it, in MB (None if unmeasurable).

    Memory freed earlier but still resident is reused first, so in a process that has
    already done bigger work this is a lower bound; measure in a fresh process for an
    exact figure (``benchmarks/scaling.py`` does).
    """
    if not reset_peak():
        fn()
        return None
    before = rss_mb()
    fn()
    after = peak_mb()
    return None if before is None or after is None else round(max(0.0, after - before), 2)


# -- machine -----------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    """CPU model, core count, memory, OS, Python/torch versions, CUDA device if any."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_total = None
    try:
        import psutil

        mem_total = round(psutil.virtual_memory().total / _MB / 1024, 1)
    except ImportError:  # pragma: no cover - psutil ships with the environment
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": mem_total,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


# -- timing ------------------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def throughput(fn: Callable[[], Any], items: int, reps: int, device: str = "cpu") -> float:
    """Items per second of ``fn`` (which processes ``items``), best of ``reps`` after warm-up."""
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return round(items / best, 2)


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

    if ref != RETRIEVAL_REF:  # fail on a bad reference before the slow teacher load
        from celltext.registry import resolve_model_ref

        resolve_model_ref(ref)
    if onnx is not None:
        _check_onnx_dir(ref, onnx)
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

    retrieval = RetrievalSystem(RetrievalBaseline.from_release(release, teacher))
    latency["retrieval"] = measure_latency(
        lambda q: retrieval.answer_texts([q], cache=False), timed
    )
    thr["retrieval"] = throughput(
        lambda: retrieval.answer_texts(batch, cache=False), len(batch), reps
    )
    report: dict[str, Any] = {"model": ref or "default", "iters": iters, "device": device}
    if ref != RETRIEVAL_REF:
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
        _sync(device)

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


# -- onnxruntime against PyTorch -----------------------------------------------------------------
# Run in a fresh interpreter per path: load one predictor, answer the questions at batch 1,
# print one JSON line with the process's peak RSS. It imports nothing from this module (which
# imports torch); the onnx path must not import torch at all.
_CHILD = """
import json, resource, sys
args = json.loads(sys.argv[1])

def kb(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None

if args["path"] == "onnx":
    from celltext.serving.onnx_runtime import OrtPredictor
    pred = OrtPredictor.from_dir(args["dir"], fallback=False, threads=args["threads"])
else:
    import torch
    torch.set_num_threads(args["threads"])
    from celltext.serving.predictor import Predictor, PredictorConfig
    cfg = PredictorConfig.from_dict(args["config"])
    pred = Predictor.from_ref(args["ref"], fallback=False, config=cfg)
loaded = kb("VmRSS")
for q in args["questions"]:
    pred.answer([q])
peak = kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({
    "peak_rss_mb": round(peak / 1024, 2),
    "rss_after_load_mb": None if loaded is None else round(loaded / 1024, 2),
    "torch_imported": "torch" in sys.modules,
    "answered": len(args["questions"]),
}))
"""


def _check_onnx_dir(ref: str | None, folder: str | Path) -> None:
    """Fail early (ValueError) on an unusable ``--onnx`` argument."""
    from celltext.serving.loading import is_onnx_export

    if ref == RETRIEVAL_REF:
        raise ValueError("--onnx compares a model's two runtimes; the retrieval baseline has none")
    if not is_onnx_export(folder):
        raise ValueError(f"{folder} is not an ONNX export (run `celltext export onnx --out DIR`)")


def _spawn(args: dict[str, Any]) -> subprocess.Popen:
    """Start the memory child for one path (see ``_CHILD``)."""
    import celltext

    env = dict(os.environ)
    root = str(Path(celltext.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    cmd = [sys.executable, "-c", _CHILD, json.dumps(args)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _collect(proc: subprocess.Popen, path: str) -> dict[str, Any]:
    """The child's JSON line, or ``peak_rss_mb: None`` with the error."""
    try:
        out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err = f"timed out after {CHILD_TIMEOUT_S} s\n{err}"
    if proc.returncode == 0 and out.strip():
        try:
            return json.loads(out.strip().splitlines()[-1])
        except json.JSONDecodeError:
            pass
    log.warning("memory subprocess for the %s path failed: %s", path, err[-2000:])
    return {"peak_rss_mb": None, "error": (err.strip() or f"exit {proc.returncode}")[-500:]}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


def bench_onnx(
    folder: str | Path,
    ref: str | None,
    teacher: Any,
    timed: list[str],
    batch: list[str],
    reps: int,
    threads: int,
) -> dict[str, Any]:
    """The ``onnx`` section of the report (see module docstring): onnxruntime against
    PyTorch, both the Predictor with greedy decoding and no fallback, on CPU."""
    from celltext.registry import resolve_model_ref
    from celltext.serving.onnx_runtime import OrtPredictor
    from celltext.serving.predictor import Predictor

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    ckpt = Path(resolve_model_ref(ref)).resolve()
    exported_from = manifest.get("model", {}).get("path")
    same = None if not exported_from else Path(exported_from).resolve() == ckpt
    if same is False:
        log.warning("%s was exported from %s, not from %s", folder, exported_from, ckpt)
    ort_pred = OrtPredictor.from_dir(folder, fallback=False, threads=threads)
    cfg = ort_pred.config  # the export's settings, greedy, no fallback, no rerank
    torch_pred = Predictor.from_ref(str(ckpt), fallback=False, config=cfg, teacher=teacher)
    # Memory children first, while this process only waits (they time nothing).
    common = {"threads": threads, "questions": list(timed)}
    procs = {
        "onnx": _spawn({**common, "path": "onnx", "dir": str(folder.resolve())}),
        "pytorch": _spawn({**common, "path": "pytorch", "ref": str(ckpt), "config": cfg.to_dict()}),
    }
    mem = {path: _collect(proc, path) for path, proc in procs.items()}
    if mem["onnx"].get("torch_imported"):
        log.warning("the onnxruntime path imported torch")

    def measure(pred: Any) -> dict[str, Any]:
        return {
            "latency_ms": measure_latency(lambda q: pred.answer([q]), timed),
            "throughput_per_s": throughput(lambda: pred.answer(batch), len(batch), reps),
        }

    onnx_res, torch_res = measure(ort_pred), measure(torch_pred)
    return {
        "dir": str(folder),
        "model": manifest.get("model", {}).get("label"),
        "same_checkpoint": same,
        "decoder_mode": manifest.get("decoder", {}).get("mode"),
        "providers": list(getattr(ort_pred, "providers", [])),
        "settings": {
            "batch": 1,
            "iters": len(timed),
            "warmup": 2,
            "strategy": cfg.strategy,
            "fallback": False,
            "max_new_tokens": cfg.max_new_tokens,
            "threads": threads,
            "device": "cpu",
            "questions": "those of latency_ms.end_to_end",
        },
        "batch_size": len(batch),
        **onnx_res,
        **mem["onnx"],
        "pytorch": {**torch_res, **mem["pytorch"]},
        "memory_method": "VmHWM of a fresh subprocess per path that loads only that path "
        "and answers the timed questions at batch 1",
        "ratio_p50_onnx_to_pytorch": _ratio(
            onnx_res["latency_ms"]["p50"], torch_res["latency_ms"]["p50"]
        ),
        "ratio_peak_rss_onnx_to_pytorch": _ratio(
            mem["onnx"].get("peak_rss_mb"), mem["pytorch"].get("peak_rss_mb")
        ),
    }
