"""Memory and cold start of one backend, measured in a fresh interpreter.

``python -m celltext.benchmarking.memory_child ARGS_JSON`` loads one predictor (``path``:
``onnx``, an export directory, or ``pytorch``, a checkpoint), answers ``questions`` at
batch 1 and prints one JSON line: ``peak_rss_mb`` (``VmHWM``), ``rss_after_load_mb``,
``load_s`` (imports + loading, from the interpreter's start), ``first_answer_s`` (the
first answer, from the interpreter's start: a cold ``celltext ask``), ``torch_imported``
and ``answered``. :mod:`celltext.benchmarking.onnx_compare` starts one per backend.

This module imports nothing that imports torch (nor does ``celltext.benchmarking``'s
``__init__``), so the onnxruntime path is measured without it; only the ``pytorch`` path
imports torch, to set its thread count.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

from celltext.benchmarking.resources import status_kb

T0 = time.perf_counter()  # before the heavy imports in measure(): load_s counts them


def measure(args: dict[str, Any]) -> dict[str, Any]:
    """Load the predictor that ``args`` names and answer its questions (see the module
    docstring); the times count from :data:`T0`."""
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.inference.options import PredictorConfig

    cfg = PredictorConfig.from_dict(args["config"])
    bank = RetrievalIndex.load(args["bank"])
    if args["path"] == "onnx":
        pred = load_predictor(args["dir"], config=cfg, bank=bank, threads=args["ort_threads"])
    else:
        import torch

        torch.set_num_threads(args["threads"])
        pred = load_predictor(args["ref"], config=cfg, bank=bank, backend="torch")
    loaded, load_s = status_kb("VmRSS"), time.perf_counter() - T0
    pred.answer(args["questions"][:1])
    first_s = time.perf_counter() - T0
    for q in args["questions"]:
        pred.answer([q])
    peak = status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "peak_rss_mb": round(peak / 1024, 2),
        "rss_after_load_mb": None if loaded is None else round(loaded / 1024, 2),
        "load_s": round(load_s, 3),
        "first_answer_s": round(first_s, 3),
        "torch_imported": "torch" in sys.modules,
        "answered": len(args["questions"]),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure with the JSON arguments of ``argv[0]``; print the result as one JSON line."""
    argv = sys.argv[1:] if argv is None else argv
    print(json.dumps(measure(json.loads(argv[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
