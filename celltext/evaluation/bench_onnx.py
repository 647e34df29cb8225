"""``celltext bench --onnx DIR``: the onnxruntime path against the PyTorch path.

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
import subprocess
import sys
from pathlib import Path
from typing import Any

from celltext.evaluation.evaluate import measure_latency
from celltext.evaluation.resources import throughput
from celltext.inference.records import RETRIEVAL

CHILD_TIMEOUT_S = 900
log = logging.getLogger(__name__)


# -- onnxruntime against PyTorch -----------------------------------------------------------------
# Run in a fresh interpreter per path: load one predictor, answer the questions at batch 1,
# print one JSON line with the process's peak RSS. It imports nothing from this module (which
# imports torch); the onnx path must not import torch at all (resources.py does not).
_CHILD = """
import json, resource, sys
from celltext.evaluation.resources import status_kb as kb
args = json.loads(sys.argv[1])

if args["path"] == "onnx":
    from celltext.inference.factory import load_predictor
    pred = load_predictor(args["dir"], fallback=False, threads=args["threads"])
else:
    import torch
    torch.set_num_threads(args["threads"])
    from celltext.inference.factory import load_predictor
    from celltext.inference.records import PredictorConfig
    cfg = PredictorConfig.from_dict(args["config"])
    pred = load_predictor(args["ref"], fallback=False, config=cfg, backend="torch")
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


def check_onnx_dir(ref: str | None, folder: str | Path) -> None:
    """Fail early (ValueError) on an unusable ``--onnx`` argument."""
    from celltext.inference.loading import is_onnx_export

    if ref == RETRIEVAL:
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
    from celltext.inference.factory import load_predictor
    from celltext.registry import resolve_model_ref

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    ckpt = Path(resolve_model_ref(ref)).resolve()
    exported_from = manifest.get("model", {}).get("path")
    same = None if not exported_from else Path(exported_from).resolve() == ckpt
    if same is False:
        log.warning("%s was exported from %s, not from %s", folder, exported_from, ckpt)
    ort_pred = load_predictor(str(folder), fallback=False, threads=threads)
    cfg = ort_pred.config  # the export's settings, no fallback

    torch_pred = load_predictor(
        str(ckpt), fallback=False, config=cfg, teacher=teacher, backend="torch"
    )
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
        "providers": list(getattr(ort_pred.backend, "providers", [])),
        "settings": {
            "batch": 1,
            "iters": len(timed),
            "warmup": 2,
            "num_beams": cfg.num_beams,
            "do_sample": cfg.do_sample,
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
