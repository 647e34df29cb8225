"""Choosing the fallback threshold from data.

For each validation question the generated answer (with its confidence) and the
phrase-bank answer are both scored against the reference answer (teacher semantic
similarity, the metric of :mod:`celltext.evaluation.metrics`). A threshold ``t`` serves the
generated answer when its confidence is ``>= t`` and the bank's otherwise; the best ``t``
maximises the mean similarity of what is served. The curve (threshold -> quality, fallback
rate) is returned so the choice can be read, not just taken.

    python -m celltext.serving.calibrate --model models/default --split val --limit 1000
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np


def calibrate_threshold(
    predictor,
    questions: Sequence[str],
    references: Sequence[str],
    thresholds: Sequence[float] | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """The threshold that maximises the mean semantic similarity of served answers."""
    from celltext.evaluation.metrics import semantic_similarity_scores

    if predictor.bank is None or predictor.retrieval_only:
        raise ValueError("calibration needs a generative model with a phrase bank")
    questions, references = list(questions), list(references)
    saved = predictor.config
    predictor.config = saved.replace(fallback=False)
    generated, confidence = [], []
    try:
        for start in range(0, len(questions), batch_size):
            for row in predictor.answer(questions[start : start + batch_size]):
                generated.append(row.answer)
                confidence.append(row.confidence)
    finally:
        predictor.config = saved
    bank = [m.text for m in predictor.bank.by_question(predictor.embed(questions))]
    teacher = predictor.teacher
    sim_gen = semantic_similarity_scores(generated, references, teacher)  # (N,)
    sim_bank = semantic_similarity_scores(bank, references, teacher)  # (N,)
    conf = np.asarray(confidence, dtype=np.float64)  # (N,)
    grid = np.round(np.arange(0.0, 1.0001, 0.05), 2) if thresholds is None else thresholds
    curve = []
    for t in grid:
        use_bank = conf < t  # (N,)
        served = np.where(use_bank, sim_bank, sim_gen)
        curve.append(
            {"threshold": float(t), "semantic_similarity": float(served.mean()),
             "fallback_rate": float(use_bank.mean())}
        )  # fmt: skip
    best = max(curve, key=lambda c: (c["semantic_similarity"], -c["fallback_rate"]))
    return {
        "questions": len(questions),
        "best": best,
        "generated_only": float(sim_gen.mean()),
        "bank_only": float(sim_bank.mean()),
        "oracle": float(np.maximum(sim_gen, sim_bank).mean()),
        "confidence_vs_similarity_corr": float(np.corrcoef(conf, sim_gen)[0, 1])
        if len(conf) > 1 and conf.std() > 0 and sim_gen.std() > 0
        else None,
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Choose the fallback threshold on a split.")
    parser.add_argument("--model", default=None)
    parser.add_argument("--release", default="v1")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args(argv)
    from celltext.data.release import load_release
    from celltext.serving.predictor import Predictor, PredictorConfig

    pairs = load_release(args.release).pairs(args.split)[: args.limit]
    predictor = Predictor.from_ref(args.model, config=PredictorConfig(release=args.release))
    result = calibrate_threshold(predictor, [p.question for p in pairs], [p.answer for p in pairs])
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
