"""The phrase bank's HNSW search (:mod:`celltext.ann`) against a full scan: agreement and time.

    python benchmarks/ann_recall.py --out docs/results/v3/ann.json
    python benchmarks/ann_recall.py --scale 10      # also a bank 10x the size (minutes)

Queries: the held-out paraphrases of the default release and its ``test_paraphrase``
questions (never training questions), embedded by the teacher of the shipped export.
Reports, for the question side (top 20, what the ranker reads) and the answer side (top 1,
the nearest answer to the core's prediction): the share of the full scan's first row that
the graph finds first, recall of the full scan's top 20, and the batch-1 p50 of each
search. ``--scale N`` repeats the timing on a bank N times the size (each row copied with
small Gaussian noise, renormalised: the same geometry, N times the rows).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _p50_ms(fn, queries: np.ndarray, n: int = 200) -> float:
    times = []
    for i in range(min(n, len(queries))):
        q = queries[i : i + 1]
        start = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - start) * 1000.0)
    return round(float(np.median(times)), 4)


def _exact(embs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ embs.T  # (B, N)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1)
    return np.take_along_axis(part, order, 1)


def compare(embs: np.ndarray, queries: np.ndarray, k: int, search=None) -> dict:
    """The graph against a full scan on ``embs`` (N, D) for unit ``queries`` (B, D)."""
    from celltext.ann import HnswSearch

    start = time.perf_counter()
    search = search or HnswSearch.build(embs)
    build_s = time.perf_counter() - start
    exact = _exact(embs, queries, k)
    found = search.top(queries, k)[0]
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact, strict=True)])
    return {
        "rows": len(embs),
        "k": k,
        "first_row_agrees": float(np.mean(found[:, 0] == exact[:, 0])),
        f"recall_at_{k}": float(recall),
        "scan_p50_ms": _p50_ms(lambda q: _exact(embs, q, k), queries),
        "hnsw_p50_ms": _p50_ms(lambda q: search.top(q, k), queries),
        "build_s": round(build_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=0, help="Also time a bank this many times bigger.")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from celltext.data.heldout import WithHeldout
    from celltext.data.release import load_release
    from celltext.index import RetrievalIndex, unit_rows
    from celltext.inference.factory import load_predictor
    from celltext.paths import DEFAULT_RELEASE

    release = WithHeldout(load_release(DEFAULT_RELEASE))
    predictor = load_predictor(None, fallback=False)
    bank = RetrievalIndex.for_release(predictor.teacher, release, "train", approximate=False)
    questions = [p.question for p in release.pairs("heldout_paraphrase")]
    questions += [p.question for p in release.pairs("test_paraphrase")][:500]
    q = unit_rows(predictor.embed(questions))  # (B, D)
    preds = unit_rows(predictor.core(q))  # (B, D): what the answer side is asked with
    report = {
        "queries": len(q),
        "question_side": compare(bank.question_embs, q, 20),
        "answer_side": compare(bank.answer_embs, preds, 1),
    }
    if args.scale > 1:
        rng = np.random.default_rng(0)
        big = np.concatenate(
            [unit_rows(bank.question_embs + rng.normal(0, 0.02, bank.question_embs.shape))
             for _ in range(args.scale)]
        )  # fmt: skip
        report[f"question_side_x{args.scale}"] = compare(big, q, 20)
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
