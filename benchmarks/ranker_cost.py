"""What the ranker adds to an answer: end-to-end p50 at batch 1 with and without it.

    python benchmarks/ranker_cost.py [--n 200] [--backend onnx] [--out FILE]

Loads the shipped model once (the onnxruntime export by default) and answers the same
``test_paraphrase`` questions one at a time, alternating a predictor with the ranker and
the same predictor without it (``ranker=None``: the nearest known question's fact), after
a warm-up; also times ``Ranker.rank`` alone. Medians of warm calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from celltext.data.release import load_release
    from celltext.inference.factory import load_predictor
    from celltext.inference.predictor import Predictor

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--backend", default="onnx")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    ranked = load_predictor(None, backend=args.backend)
    plain = Predictor(ranked.teacher, ranked.backend, ranked.bank, ranked.config, ranked.info,
                      ranked.selector, None)  # fmt: skip
    questions = [q.question for q in load_release().pairs("test_paraphrase")[: args.n]]
    for q in questions[:10]:
        ranked.answer([q])
        plain.answer([q])
    times = {"with_ranker": [], "without_ranker": [], "rank_alone": []}
    for q in questions:
        for name, pred in (("with_ranker", ranked), ("without_ranker", plain)):
            start = time.perf_counter()
            pred.answer([q])
            times[name].append((time.perf_counter() - start) * 1000)
        emb = ranked.embed([q])
        preds = ranked.core(emb)
        start = time.perf_counter()
        ranked.ranker.rank([q], emb, preds, ranked.bank)
        times["rank_alone"].append((time.perf_counter() - start) * 1000)
    report = {k: {"p50": float(np.median(v)), "p95": float(np.percentile(v, 95))}
              for k, v in times.items()}  # fmt: skip
    report["added_p50_ms"] = report["with_ranker"]["p50"] - report["without_ranker"]["p50"]
    report |= {"n": len(questions), "backend": args.backend}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
