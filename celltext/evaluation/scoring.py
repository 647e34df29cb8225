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


# -- splits that mix answerable and unanswerable questions (heldout_natural) -----------------
RISK_COVERAGE_THRESHOLDS = tuple(i / 20 for i in range(21))
"""Confidence thresholds of the reported risk-coverage points (0, 0.05, ..., 1)."""


def _rate(num: int | float, den: int | float) -> float:
    return rounded(num / den) if den else 0.0


def risk_coverage(
    conf: np.ndarray,
    answerable: np.ndarray,
    correct: np.ndarray,
    thresholds: Sequence[float] = RISK_COVERAGE_THRESHOLDS,
) -> dict[str, Any]:
    """The risk-coverage curve of serving exactly the rows whose confidence is >= t.

    ``conf`` (N,) confidences; ``answerable`` (N,) bool; ``correct`` (N,) bool, whether the
    answer is right (semantic similarity >= CORRECT_AT; never for an unanswerable row). A
    served row is wrong when it is unanswerable or not correct. Each point of ``points``
    (one per threshold): ``coverage`` (served / all), ``risk`` (wrong / served, 0 when
    nothing is served), ``answerable_correct_rate`` (served and correct / answerable) and
    ``unanswerable_served_rate``. ``aurc``: the area under the step curve of risk against
    coverage over every distinct confidence (ties served together; lower is better).
    """
    conf = np.asarray(conf, dtype=np.float64)
    ans = np.asarray(answerable, dtype=bool)
    right = np.asarray(correct, dtype=bool) & ans
    wrong = ~right  # of a served row
    n, n_ans, n_un = len(conf), int(ans.sum()), int((~ans).sum())
    points = []
    for t in thresholds:
        served = conf >= t
        k = int(served.sum())
        points.append({
            "threshold": rounded(t), "coverage": _rate(k, n),
            "risk": _rate(int((served & wrong).sum()), k),
            "answerable_correct_rate": _rate(int((served & right).sum()), n_ans),
            "unanswerable_served_rate": _rate(int((served & ~ans).sum()), n_un),
        })  # fmt: skip
    aurc = 0.0
    if n:
        order = np.argsort(-conf, kind="stable")
        cum_wrong = np.cumsum(wrong[order])  # (N,)
        c_sorted = conf[order]
        last = np.flatnonzero(np.r_[c_sorted[1:] != c_sorted[:-1], True])  # end of each tie
        served_k = last + 1
        risks = cum_wrong[last] / served_k
        widths = np.diff(np.r_[0, served_k]) / n
        aurc = float(np.sum(risks * widths))
    return {"points": points, "aurc": rounded(aurc)}


def mixed_selective_metrics(
    answerable: Sequence[bool],
    served: Sequence[bool],
    correct: Sequence[bool],
    conf: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Metrics of a split mixing answerable and unanswerable rows (all (N,) per row).

    ``served``: the system gave an answer (did not abstain); ``correct``: the answer matches
    the reference (semantic similarity >= CORRECT_AT; ignored for unanswerable rows). A
    served answer is wrong when its row is unanswerable or it is not correct.

    - ``served_wrong_rate``: wrong / served (0 when nothing is served);
    - ``answerable_correct_rate``: served and correct / answerable;
    - ``answerable_abstention_rate``, ``unanswerable_abstention_rate``;
    - ``answerable_best_guess_accuracy``: correct / answerable, abstained or not;
    - ``coverage``: served / all;
    - with ``conf``: ``calibration_error`` (ECE of the confidence against ``correct``; an
      unanswerable row is never correct) and ``risk_coverage`` (:func:`risk_coverage`).
    """
    ans = np.asarray(answerable, dtype=bool)
    srv = np.asarray(served, dtype=bool)
    right = np.asarray(correct, dtype=bool) & ans
    if not (len(ans) == len(srv) == len(right)):
        raise ValueError("answerable, served and correct must have one entry per row")
    n_ans, n_un, n_srv = int(ans.sum()), int((~ans).sum()), int(srv.sum())
    out: dict[str, Any] = {
        "served_wrong_rate": _rate(int((srv & ~right).sum()), n_srv),
        "answerable_correct_rate": _rate(int((srv & right).sum()), n_ans),
        "answerable_abstention_rate": _rate(int((~srv & ans).sum()), n_ans),
        "unanswerable_abstention_rate": _rate(int((~srv & ~ans).sum()), n_un),
        "answerable_best_guess_accuracy": _rate(int(right.sum()), n_ans),
        "coverage": _rate(n_srv, len(ans)),
    }
    if conf is not None and len(ans):
        from celltext.inference.selector import expected_calibration_error

        c = np.asarray(conf, dtype=np.float64)
        out["calibration_error"] = rounded(expected_calibration_error(c, right.astype(float)))
        out["risk_coverage"] = risk_coverage(c, ans, right)
    return out
