"""Fitting the answer selector and its confidence on ``val`` (never on a test split).

The calibration set has three parts, all derived from the release's ``val`` split:

- **seen**: every ``val`` question as it is (its subject is known to the phrase bank);
- **unseen**: a share of the ``val`` questions answered with their own subject hidden
  from the phrase bank, which imitates a subject the model was not taught (``test_unseen``);
- **out of scope**: ``val`` questions whose subject is replaced by a made-up word
  (seeded syllables), which no candidate can answer.

For each question every candidate of :mod:`celltext.serving.candidates` is built exactly as
serving builds it and labelled correct when its teacher cosine to the reference is
>= :data:`~celltext.serving.selector.CORRECT_AT`; :func:`~celltext.serving.selector.fit_selector`
fits the per-kind probabilities, the Platt scaling and the abstention threshold.

    python -m celltext.serving.calibrate --model models/default      # writes selector.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from celltext.serving.candidates import candidate_matrices, retrieve
from celltext.serving.quality import unit_rows
from celltext.serving.selector import (
    CORRECT_AT,
    SELECTOR_FILE,
    AnswerSelector,
    expected_calibration_error,
    fit_selector,
)

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + ["qu", "xo", "wy"]


def pseudo_word(rng: np.random.Generator) -> str:
    """A made-up word of 2-4 syllables (no release subject looks like it)."""
    return "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 5)))) + str(
        rng.choice(["", "ix", "or", "um", "el"])
    )


def calibration_set(pairs, unseen_rate: float = 0.4, oos_rate: float = 0.4, seed: int = 0):
    """Rows ``(question, reference or None, hidden subject or None, part)``."""
    rng = np.random.default_rng(seed)
    rows = [(p.question, p.answer, None, "seen") for p in pairs]
    for p in pairs:
        if rng.random() < unseen_rate:
            rows.append((p.question, p.answer, p.subject, "unseen"))
        if rng.random() < oos_rate and p.subject.lower() in p.question.lower():
            fake = re.sub(re.escape(p.subject), pseudo_word(rng), p.question, flags=re.I)
            rows.append((fake, None, None, "out_of_scope"))
    return rows


def candidate_table(predictor, rows, batch_size: int = 64) -> dict[str, Any]:
    """Feature matrices and correctness per kind for calibration ``rows``."""
    bank = predictor.bank
    subjects = np.array(bank.subjects or [""] * len(bank), dtype=object)
    mats: dict[str, list[np.ndarray]] = {}
    hits: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        questions = [r[0] for r in chunk]
        q = predictor.embed(questions)  # (b, D)
        preds = predictor._core(q)  # (b, D)
        exclude = np.stack([subjects == (r[2] or "\0") for r in chunk])  # (b, N)
        found = retrieve(bank, questions, q, preds, exclude=exclude)
        protos = [bank.answers[r] for r in found.retrieved]
        texts = predictor._generate(preds, protos)
        embs = predictor.embed(texts)
        kind = "edited" if predictor.edits else "generated"
        cands, m = candidate_matrices(bank, found, q, preds, kind, texts, embs)
        refs = [r[1] or "" for r in chunk]
        ref_embs = unit_rows(predictor.embed(refs))  # (b, D)
        known = np.array([r[1] is not None for r in chunk])
        emb_of = {
            "retrieved": bank.answer_embs[found.retrieved],
            "nearest": bank.answer_embs[found.nearest],
            kind: embs,
        }
        for k in cands:
            sim = np.sum(unit_rows(emb_of[k]) * ref_embs, axis=1)
            mats.setdefault(k, []).append(m[k])
            hits.setdefault(k, []).append(((sim >= CORRECT_AT) & known).astype(float))
    return {
        "matrices": {k: np.concatenate(v) for k, v in mats.items()},
        "correct": {k: np.concatenate(v) for k, v in hits.items()},
        "seen": np.array([r[3] == "seen" for r in rows]),
        "part": np.array([r[3] for r in rows]),
    }


def calibrate(predictor, pairs, max_in_scope_abstention: float = 0.03, seed: int = 0):
    """Fit a selector on ``pairs`` (the ``val`` split); returns it and a report."""
    if predictor.bank is None or predictor.retrieval_only:
        raise ValueError("calibration needs a generative model with a phrase bank")
    saved = predictor.config
    predictor.config = saved.replace(rerank=0)
    try:
        rows = calibration_set(pairs, seed=seed)
        table = candidate_table(predictor, rows)
    finally:
        predictor.config = saved
    sel = fit_selector(
        table["matrices"], table["correct"], table["seen"], max_in_scope_abstention, seed
    )
    kinds, conf = sel.choose(table["matrices"])
    hit = np.array([table["correct"][k][i] for i, k in enumerate(kinds)])
    abstain = conf < sel.abstain_below
    part = table["part"]
    report = {
        "questions": {p: int((part == p).sum()) for p in ("seen", "unseen", "out_of_scope")},
        "ece": expected_calibration_error(conf, hit),
        "accuracy_of_chosen": float(hit.mean()),
        "abstain_below": sel.abstain_below,
        "abstention": {p: float(abstain[part == p].mean()) for p in set(part.tolist())},
        "chosen": {k: int(sum(c == k for c in kinds)) for k in table["matrices"]},
        "oracle_accuracy": float(np.max(np.stack(list(table["correct"].values())), 0).mean()),
    }
    sel.fitted_on = {"split": "val", "pairs": len(pairs), **report}
    return sel, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fit the answer selector on a split.")
    parser.add_argument("--model", default=None, help="model reference (default: shipped)")
    parser.add_argument("--release", default="v1")
    parser.add_argument("--split", default="val", choices=["val", "train"])
    parser.add_argument("--limit", type=int, default=0, help="at most this many pairs")
    parser.add_argument("--out", default=None, help=f"where to write (default: {SELECTOR_FILE} "
                        "in the model directory)")  # fmt: skip
    args = parser.parse_args(argv)
    from celltext.data.release import load_release
    from celltext.serving.loading import resolve_ref
    from celltext.serving.predictor import Predictor, PredictorConfig

    pairs = load_release(args.release).pairs(args.split)
    pairs = pairs[: args.limit] if args.limit else pairs
    predictor = Predictor.from_ref(args.model, config=PredictorConfig(release=args.release))
    selector, report = calibrate(predictor, pairs)
    out = Path(args.out) if args.out else resolve_ref(args.model) / SELECTOR_FILE
    selector.save(out)
    sys.stdout.write(json.dumps({"selector": str(out), **report}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["AnswerSelector", "calibrate", "calibration_set", "candidate_table", "pseudo_word"]
