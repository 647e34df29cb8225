"""Top-1 of the ranker against retrieval: is the chosen known fact the reference answer?

    python benchmarks/ranking_top1.py [--model models/default] [--out docs/results/v3/ranking.json]

For every question of ``test_paraphrase`` (the whole split), the held-out paraphrases
(``data/heldout/paraphrase_<release>.jsonl``) and the answerable questions of the held-out
natural set, it counts how often the bank row each system picks carries the reference
answer: retrieval (the nearest known question, as typed), the ranker (its choice among the
nearest ``TOP_K``, on the question as served, typos corrected against the bank, and as
typed), and whether the reference is among those ``TOP_K`` at all (the ranker's ceiling).
The natural development set (``dev_natural``, where the threshold is tuned) is reported too.
Also: how the ranker's null probability separates the natural set's unanswerable questions.
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
    from celltext.data.heldout import load_heldout
    from celltext.data.release import load_release
    from celltext.index import RetrievalIndex
    from celltext.inference.factory import load_predictor
    from celltext.inference.ranking import TOP_K, Ranker
    from celltext.paths import DEFAULT_RELEASE, default_model_dir
    from celltext.teacher import load_teacher

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(default_model_dir()))
    p.add_argument("--release", default=DEFAULT_RELEASE)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    teacher = load_teacher()
    rel = load_release(args.release)
    bank = RetrievalIndex.for_release(teacher, rel, "train")
    ranker = Ranker.load(args.model)
    if ranker is None:
        raise SystemExit(f"{args.model} has no ranker (python -m celltext.training.rank)")
    predictor = load_predictor(args.model, teacher=teacher, bank=bank, backend="torch")
    natural = load_heldout("heldout_natural", release=rel.version)
    sets = {
        "test_paraphrase": [(q.question, q.answer) for q in rel.pairs("test_paraphrase")],
        "heldout_paraphrase": [
            (q.question, q.answer) for q in load_heldout("heldout_paraphrase", release=rel.version)
        ],
        "heldout_natural_answerable": [(q.question, q.answer) for q in natural if q.answer],
        "dev_natural_answerable (tuned on)": [
            (q.question, q.answer) for q in load_heldout("dev_natural") if q.answer
        ],
    }
    model = Path(args.model).resolve()
    shown = model.relative_to(ROOT) if model.is_relative_to(ROOT) else model
    report: dict = {"model": str(shown), "release": rel.version, "top_k": TOP_K}
    for name, rows in sets.items():
        questions, refs = [r[0] for r in rows], [r[1] for r in rows]
        start = time.perf_counter()
        q = predictor.embed(questions)
        nearest = bank.top_questions(q, k=TOP_K)[0]  # (N, K): retrieval reads them as typed
        pairs = zip(nearest, refs, strict=True)
        hit = np.array([[bank.answers[r] == ref for r in row] for row, ref in pairs])
        report[name] = {"n": len(rows), "retrieval_top1": float(hit[:, 0].mean())}
        read = predictor.read(questions)  # as served: typing errors corrected
        for key, texts in (("ranker_top1_as_typed", questions), ("ranker_top1", read)):
            q = predictor.embed(texts)
            ranked = ranker.rank(texts, q, predictor.core(q), bank)
            picked = [bank.answers[r] == a for r, a in zip(ranked.rows, refs, strict=True)]
            report[name][key] = float(np.mean(picked))
        found = bank.top_questions(predictor.embed(read), k=TOP_K)[0]
        in_top = [any(bank.answers[r] == a for r in rw) for rw, a in zip(found, refs, strict=True)]
        report[name]["reference_in_top_k"] = float(np.mean(in_top))
        report[name]["seconds"] = round(time.perf_counter() - start, 1)
        print(name, report[name], flush=True)
    unanswerable = [q.question for q in natural if not q.answer]
    answerable = [q.question for q in natural if q.answer]
    nulls = {}
    for name, qs in (("unanswerable", unanswerable), ("answerable", answerable)):
        qs = predictor.read(qs)
        q = predictor.embed(qs)
        nulls[name] = ranker.rank(qs, q, predictor.core(q), bank).null
    report["heldout_natural_null"] = {
        "mean_null_unanswerable": float(nulls["unanswerable"].mean()),
        "mean_null_answerable": float(nulls["answerable"].mean()),
    }
    print(json.dumps(report["heldout_natural_null"]))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
