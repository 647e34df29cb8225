"""Scoring answers against references: per-item scores, aggregates, per-domain breakdowns,
selective-prediction metrics (abstention, calibration) and answer ranking.

Every metric is :mod:`celltext.metrics` (one definition everywhere); this module only
applies them to a set of answers. Numbers are rounded to :data:`DIGITS` places so reports
compare equal from run to run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from celltext import metrics as M
from celltext.index import nearest_rows

DIGITS = 6


def rounded(x: float) -> float:
    """``x`` as a float rounded to :data:`DIGITS` places."""
    return round(float(x), DIGITS)


def score_items(
    questions: Sequence[str], hyps: Sequence[str], refs: Sequence[str], teacher: Any
) -> dict[str, np.ndarray]:
    """Per-item scores (N,) for every per-item metric, plus coherence components."""
    coh = M.coherence(questions, hyps, teacher)
    return {
        "rouge_l": M.rouge_l_scores(hyps, refs),
        "semantic_similarity": M.semantic_similarity_scores(hyps, refs, teacher),
        "exact_match": M.exact_match_scores(hyps, refs),
        "coherence": coh.scores,
        "coherence_repetition": coh.repetition,
        "coherence_completeness": coh.completeness,
        "coherence_on_topic": coh.on_topic,
    }


def aggregate(
    idx: np.ndarray, hyps: Sequence[str], refs: Sequence[str], items: dict[str, np.ndarray]
) -> dict[str, float]:
    """Corpus BLEU/chrF on the subset ``idx`` plus the means of the per-item scores."""
    h = [hyps[i] for i in idx]
    r = [refs[i] for i in idx]
    out = {"n": int(len(idx)), "bleu": rounded(M.bleu(h, r)), "chrf": rounded(M.chrf(h, r))}
    for key, vals in items.items():
        out[key] = rounded(np.mean(vals[idx])) if len(idx) else 0.0
    return out


def per_domain(
    domains: Sequence[str],
    hyps: Sequence[str],
    refs: Sequence[str],
    items: dict[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """The aggregate of every domain present, sorted by domain name."""
    arr = np.asarray(domains)
    return {d: aggregate(np.flatnonzero(arr == d), hyps, refs, items) for d in sorted(set(domains))}


def selective_metrics(preds: Sequence[Any], sem: np.ndarray, hyps, refs) -> dict[str, Any]:
    """Abstention rate, calibration error (correct = semantic similarity >= 0.8) and the
    metrics of the answered questions, for systems that report confidences."""
    from celltext.inference.selector import CORRECT_AT, expected_calibration_error

    conf = [p.confidence for p in preds]
    if not preds or any(c is None for c in conf):
        return {}
    abstained = np.array([bool(getattr(p, "abstained", False)) for p in preds])
    correct = (np.asarray(sem) >= CORRECT_AT).astype(float)
    out: dict[str, Any] = {
        "abstention_rate": rounded(abstained.mean()),
        "calibration_error": rounded(expected_calibration_error(np.asarray(conf, float), correct)),
        "accuracy": rounded(correct.mean()),
    }
    bins = np.minimum((np.asarray(conf, float) * 15).astype(int), 14)
    # per-bin sums, so splits can be pooled into one ECE / reliability diagram
    out["calibration_bins"] = [
        [int((bins == b).sum()), rounded(np.asarray(conf, float)[bins == b].sum()),
         int(correct[bins == b].sum())]
        for b in range(15)
    ]  # fmt: skip
    kept = np.flatnonzero(~abstained)
    if len(kept):
        out["answered_semantic_similarity"] = rounded(np.mean(np.asarray(sem)[kept]))
        out["answered_accuracy"] = rounded(correct[kept].mean())
        out["answered_bleu"] = rounded(M.bleu([hyps[i] for i in kept], [refs[i] for i in kept]))
    provenance = [getattr(p, "provenance", None) for p in preds]
    if any(provenance):
        out["provenance"] = {k: provenance.count(k) for k in sorted(set(map(str, provenance)))}
    return out


def answer_top1(
    core: np.ndarray, refs: Sequence[str], bank: Sequence[str], teacher: Any
) -> np.ndarray:
    """Per item: 1.0 if the bank answer nearest to the predicted embedding is the reference."""
    bank = list(bank)
    nearest = nearest_rows(core, np.asarray(teacher.encode(bank), dtype=np.float32))  # (N,)
    return np.array(
        [float(bank[j] == r) for j, r in zip(nearest, refs, strict=True)], dtype=np.float64
    )


def core_scores(
    preds: Sequence[Any], refs: Sequence[str], teacher: Any, answer_bank: Sequence[str] | None
) -> dict[str, np.ndarray]:
    """Per item (N,): ``core_cosine``, the cosine between the predicted answer embedding and
    the teacher embedding of the reference, and with ``answer_bank`` ``answer_top1``
    (:func:`answer_top1`); nothing where a prediction has no core embedding."""
    if not preds or any(p.core_emb is None for p in preds):
        return {}
    core = np.stack([p.core_emb for p in preds])  # (N, D)
    target = np.asarray(teacher.encode(list(refs)), dtype=np.float32)  # (N, D)
    out = {"core_cosine": M.cosine_rows(core, target)}
    if answer_bank:
        out["answer_top1"] = answer_top1(core, refs, answer_bank, teacher)
    return out
