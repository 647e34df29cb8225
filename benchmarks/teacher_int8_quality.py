"""Does the int8 teacher cost answer quality? The production path on onnxruntime with the
float32 teacher and with the int8 one, each with a phrase bank built by its own teacher,
through the same evaluation as ``celltext eval`` (metrics by the float32 PyTorch teacher).

    python benchmarks/teacher_int8_quality.py --out docs/results/v3/teacher_int8.json

Builds both exports when missing (``celltext export onnx --teacher float32|int8``; the int8
one is the served export, with the selector fitted for it); each phrase bank of the train
split is built on first use (about a minute). Prints one row per split and
teacher: semantic similarity, BLEU, served-and-wrong and abstention rates, ECE.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SPLITS = {  # split -> limit (None: all of it)
    "test_paraphrase": 500,
    "test_unseen": 500,
    "heldout_paraphrase": None,
    "heldout_natural": None,
    "dev_natural": None,  # the threshold is tuned on it: reported, not a held-out number
    "out_of_scope": None,
}
KEYS = ("semantic_similarity", "bleu", "abstention_rate", "calibration_error", "accuracy",
        "answered_accuracy", "served_wrong_rate", "answerable_correct_rate",
        "unanswerable_abstention_rate")  # fmt: skip


def _flat(report: dict, out: dict | None = None, prefix: str = "") -> dict:
    """The report's numbers whose last key is one of KEYS (first hit wins)."""
    out = {} if out is None else out
    for k, v in report.items():
        if isinstance(v, dict):
            _flat(v, out, f"{prefix}{k}.")
        elif k in KEYS and isinstance(v, int | float) and k not in out:
            out[k] = v
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="Checkpoint (default: the shipped model).")
    ap.add_argument("--splits", default=",".join(SPLITS))
    ap.add_argument("--teachers", default="float32,int8", help="Which paths to evaluate.")
    ap.add_argument(
        "--int8-selector",
        type=Path,
        default=None,
        help="Another selector for the int8 path (default: the export's own).",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from celltext.data.heldout import WithHeldout
    from celltext.data.release import load_release
    from celltext.evaluation.evaluate import EvalRequest, run_eval
    from celltext.evaluation.systems import GenerativeSystem, PredictorSystem
    from celltext.export.onnx import build_export
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.inference.options import PredictorConfig
    from celltext.inference.predictor import Predictor
    from celltext.inference.selector import AnswerSelector
    from celltext.paths import DEFAULT_RELEASE
    from celltext.registry import resolve_model_ref
    from celltext.registry.checkpoint import load_checkpoint

    release = WithHeldout(load_release(DEFAULT_RELEASE))
    src, dst = build_export(args.model, "float32"), build_export(args.model, "int8")
    gen = GenerativeSystem.from_checkpoint(
        load_checkpoint(resolve_model_ref(args.model)), PredictorConfig(), name="default"
    )
    systems = {}
    for name, folder in (("float32", src), ("int8", dst)):
        if name not in args.teachers.split(","):
            continue
        p = load_predictor(str(folder), fallback=True)
        selector = p.selector
        if name == "int8" and args.int8_selector is not None:
            selector = AnswerSelector.load(args.int8_selector)
        start = time.perf_counter()
        bank = RetrievalIndex.for_release(p.teacher, release, "train")  # by its own teacher
        print(f"{name}: bank ready in {time.perf_counter() - start:.0f} s", flush=True)
        cfg = p.config.replace(bank={"release": release.version, "split": "train"})
        served = Predictor(p.teacher, p.backend, bank, cfg, p.info, selector, p.ranker)
        systems[name] = PredictorSystem(served, gen)
    rows = []
    for split in args.splits.split(","):
        for name, system in systems.items():
            req = EvalRequest(args.model, split, limit=SPLITS.get(split), latency_samples=0,
                              rank_answers=False)  # fmt: skip
            report = run_eval(req, release, system=system)
            row = {"split": split, "teacher": name, **_flat(report)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
