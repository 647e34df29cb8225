"""The onnxruntime backend in ``celltext bench`` (key ``onnx``), against PyTorch.

``celltext bench --onnx DIR`` (DIR written by ``celltext export onnx``), or any bench of a
model whose export has been built, adds ``onnx``: the stages of
:mod:`celltext.benchmarking.stages` on the onnxruntime backend (``onnx.latency_ms``,
``onnx.throughput_per_s``, ``onnx.ratio_end_to_end_to_retrieval``, ``onnx.targets``), on
the same questions as the top-level (torch) stages, with the same predictor settings and
phrase bank. Memory and cold start are measured in *fresh* subprocesses, one per backend
(:mod:`celltext.benchmarking.memory_child`), that load only that backend and answer the
timed questions at batch 1 with the production predictor:
``onnx.memory.<backend>.peak_rss_mb`` (``VmHWM``), ``rss_after_load_mb``, ``load_s``
(imports + loading, from the interpreter's start), ``first_answer_s`` (the first answer,
from the interpreter's start: a cold ``celltext ask``), and ``torch_imported`` (never on
the onnxruntime path). Ratios:
``onnx.ratio_p50_onnx_to_pytorch`` (end to end) and ``onnx.ratio_peak_rss_onnx_to_pytorch``;
the floors of the onnxruntime calls (``onnx.floors_ms``, ``onnx.stage_floor_ms``,
``onnx.share_of_end_to_end``: :mod:`celltext.benchmarking.floors`).
This phase runs last, after ``memory.peak_rss_process_mb`` is taken.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from celltext.benchmarking.floors import floors_report
from celltext.benchmarking.resources import child_env
from celltext.benchmarking.stages import (
    StageResults,
    Workload,
    bench_model,
    bench_retrieval,
    ratio_and_targets,
)
from celltext.inference.records import RETRIEVAL

CHILD_TIMEOUT_S = 900
# onnxruntime's intra-op threads here, as served (load_predictor's default): on the 2-core
# machine of the docs a second thread made a batch-1 answer 3x slower (40 -> 130 ms p50).
ORT_THREADS = 1
log = logging.getLogger(__name__)


def check_onnx_dir(ref: str | None, folder: str | Path) -> None:
    """Fail early (ValueError) on an unusable ``--onnx`` argument."""
    from celltext.inference.loading import is_onnx_export

    if ref == RETRIEVAL:
        raise ValueError("--onnx compares a model's two runtimes; the retrieval baseline has none")
    if not is_onnx_export(folder):
        raise ValueError(f"{folder} is not an ONNX export (run `celltext export onnx --out DIR`)")


def _spawn(args: dict[str, Any]) -> subprocess.Popen:
    """Start the memory child for one path (:mod:`celltext.benchmarking.memory_child`)."""
    cmd = [sys.executable, "-m", "celltext.benchmarking.memory_child", json.dumps(args)]
    return subprocess.Popen(
        cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


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


def _exported_from(folder: Path, ref: str | None) -> tuple[dict[str, Any], Path, bool | None]:
    """The export's manifest, the checkpoint ``ref`` names, and whether the export was made
    from it (None: the manifest does not say)."""
    from celltext.registry import resolve_model_ref

    manifest = json.loads((folder / "manifest.json").read_text())
    ckpt = Path(resolve_model_ref(ref)).resolve()
    exported_from = manifest.get("model", {}).get("path")
    same = None if not exported_from else Path(exported_from).resolve() == ckpt
    if same is False:
        log.warning("%s was exported from %s, not from %s", folder, exported_from, ckpt)
    return manifest, ckpt, same


def _fresh_processes(
    folder: Path, ckpt: Path, cfg: Any, index: Any, work: Workload, threads: int
) -> dict[str, Any]:
    """Memory and cold start of both backends, one fresh process each, on ``work.timed``
    with the config ``cfg`` and the phrase bank ``index`` (saved for the children)."""
    bank_file = index.save(Path(tempfile.mkdtemp(prefix="celltext-bench-")) / "bank.npz")
    common = {"threads": threads, "ort_threads": ORT_THREADS, "questions": list(work.timed),
              "config": cfg.to_dict(), "bank": str(bank_file)}  # fmt: skip
    procs = {
        "onnx": _spawn({**common, "path": "onnx", "dir": str(folder.resolve())}),
        "pytorch": _spawn({**common, "path": "pytorch", "ref": str(ckpt)}),
    }
    mem = {path: _collect(proc, path) for path, proc in procs.items()}
    shutil.rmtree(bank_file.parent, ignore_errors=True)
    if mem["onnx"].get("torch_imported"):
        log.warning("the onnxruntime path imported torch")
    return mem


def _settings(cfg: Any, work: Workload, threads: int, with_predictor: bool) -> dict[str, Any]:
    """What the onnxruntime stages ran with (the report's ``onnx.settings``)."""
    return {
        "batch": 1,
        "iters": len(work.timed),
        "warmup": 2,
        "num_beams": cfg.decoding.generation.num_beams,
        "do_sample": cfg.decoding.generation.do_sample,
        "fallback": with_predictor,
        "max_new_tokens": cfg.decoding.generation.max_new_tokens,
        "threads": ORT_THREADS,
        "torch_threads_of_the_pytorch_child": threads,
        "device": "cpu",
        "questions": "those of the top-level latency_ms",
    }


def bench_onnx(
    folder: str | Path,
    ref: str | None,
    release: Any,
    work: Workload,
    threads: int,
    torch_stages: StageResults,
    with_predictor: bool = True,
) -> dict[str, Any]:
    """The ``onnx`` section of the report (see the module docstring): ``work`` as the torch
    stages ``torch_stages`` were measured, ``threads`` those of the pytorch child."""
    from celltext.evaluation.systems import GenerativeSystem, PredictorSystem, RetrievalSystem
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.inference.predictor import Predictor

    folder = Path(folder)
    manifest, ckpt, same = _exported_from(folder, ref)
    served = load_predictor(str(folder), fallback=False, threads=ORT_THREADS)
    cfg = served.config.replace(
        fallback={"enabled": True}
    )  # the export's settings, production path
    index = RetrievalIndex.for_release(served.teacher, release, "train")
    # Memory children first, while this process only waits (they time nothing).
    mem = _fresh_processes(folder, ckpt, cfg, index, work, threads)
    gen = GenerativeSystem(served, name=str(folder))
    predictor = None
    if with_predictor:  # the same sessions, the production settings and bank
        on = Predictor(
            served.teacher, served.backend, index, cfg, served.info, served.selector, served.ranker
        )
        predictor = PredictorSystem(on, gen)
    work = Workload(work.timed, work.batch, work.reps, "cpu")
    stages = bench_retrieval(served.teacher, RetrievalSystem(index, served.teacher), work)
    stages = stages | bench_model(gen, predictor, work)
    e2e = "end_to_end" if "end_to_end" in stages.latency_ms else "generative"
    floors = floors_report(served.teacher, work.timed, stages.latency_ms, index, gen.predictor)
    return {
        "dir": str(folder),
        "model": manifest.get("model", {}).get("label"),
        "same_checkpoint": same,
        "decoder_mode": manifest.get("decoder", {}).get("mode"),
        "providers": list(getattr(served.backend, "providers", [])),
        "settings": _settings(cfg, work, threads, with_predictor),
        "latency_ms": stages.latency_ms,
        "throughput_per_s": {"batch_size": len(work.batch), **stages.throughput_per_s},
        **ratio_and_targets(stages),
        "memory": {
            **mem,
            "method": "VmHWM of a fresh subprocess per backend that loads only "
            "that backend and answers the timed questions at batch 1",
        },  # fmt: skip
        "ratio_p50_onnx_to_pytorch": _ratio(
            stages.latency_ms[e2e]["p50"], torch_stages.latency_ms[e2e]["p50"]
        ),
        "ratio_peak_rss_onnx_to_pytorch": _ratio(
            mem["onnx"].get("peak_rss_mb"), mem["pytorch"].get("peak_rss_mb")
        ),
        **floors,
    }
