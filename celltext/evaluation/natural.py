"""Evaluation of a split that mixes answerable and unanswerable questions:
``heldout_natural`` (``data/heldout/natural_v1.jsonl``) and ``dev_natural``
(``data/dev/natural_dev_v1.jsonl``), see :mod:`celltext.data.heldout`.

Answerable rows are scored like ``heldout_paraphrase`` (BLEU, chrF, ROUGE-L, semantic
similarity ... against the reference, on the system's best guess, reported with the prefix
``answerable_``); unanswerable rows like ``out_of_scope`` (did the system abstain). Together
(:func:`celltext.evaluation.scoring.mixed_selective_metrics`): the wrong rate of the served
answers (a served answer to an unanswerable question is wrong), the answerable-correct rate
(served and semantic similarity >= CORRECT_AT), abstention on each part and the
risk-coverage curve over confidence thresholds.

:func:`evaluate_natural` has the signature of the evaluations of
:mod:`celltext.evaluation.evaluate` (it does not import that module, so that module can
import this one without a cycle).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from celltext import metrics as M
from celltext.data.heldout import OUT_OF_SCOPE_DOMAIN, is_answerable
from celltext.evaluation.scoring import aggregate, mixed_selective_metrics, rounded, score_items


def _latency(system: Any, questions: Sequence[str], warmup: int = 2) -> dict[str, float]:
    """Batch-1 wall-clock latency (ms) of ``system.answer_texts`` after ``warmup`` calls."""
    if not questions:
        return {}
    for q in list(questions)[:warmup]:
        system.answer_texts([q], cache=False)
    times = []
    for q in questions:
        t0 = time.perf_counter()
        system.answer_texts([q], cache=False)
        times.append((time.perf_counter() - t0) * 1000.0)
    summary = M.latency_summary(times)
    return {k: (rounded(v) if isinstance(v, float) else v) for k, v in summary.items()}


def evaluate_natural(
    system: Any,
    pairs: Sequence[Any],
    metric_teacher: Any,
    latency_samples: int = 0,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Answer every question of a mixed split with ``system`` and score it (module doc).

    ``pairs``: held-out pairs (or release pairs; an empty answer or the domain
    ``out_of_scope`` marks an unanswerable one). ``metrics`` holds flat numbers;
    ``risk_coverage`` the curve (when the system reports confidences); ``per_domain`` the
    answerable rows by domain and, under ``out_of_scope``, the unanswerable ones;
    ``per_kind`` the unanswerable rows by why they are unanswerable.
    """
    from celltext.inference.selector import CORRECT_AT

    n = len(pairs)
    questions = [p.question for p in pairs]
    answerable = np.array([is_answerable(p) for p in pairs], dtype=bool)  # (N,)
    if on_progress is not None:
        on_progress("answer", 0, n)
    preds = list(system.predict(questions))
    if on_progress is not None:
        on_progress("answer", n, n)
        on_progress("score", 0, 0)
    hyps = [p.answer for p in preds]
    served = np.array([not getattr(p, "abstained", False) for p in preds], dtype=bool)
    confs = [getattr(p, "confidence", None) for p in preds]
    conf = None if any(c is None for c in confs) else np.asarray(confs, dtype=np.float64)

    idx = np.flatnonzero(answerable)
    a_hyps = [hyps[i] for i in idx]
    a_refs = [pairs[i].answer for i in idx]
    items: dict[str, np.ndarray] = {}
    correct = np.zeros(n, dtype=bool)  # (N,) best guess matches the reference
    if len(idx):
        items = score_items([questions[i] for i in idx], a_hyps, a_refs, metric_teacher)
        correct[idx] = items["semantic_similarity"] >= CORRECT_AT
    mixed = mixed_selective_metrics(answerable, served, correct, conf)
    curve = mixed.pop("risk_coverage", None)
    metrics: dict[str, Any] = dict(mixed)
    if len(idx):
        overall = aggregate(np.arange(len(idx)), a_hyps, a_refs, items)
        metrics.update({f"answerable_{k}": v for k, v in overall.items() if k != "n"})

    domains = np.array([pairs[i].domain for i in idx])  # (A,)
    per_domain: dict[str, dict[str, Any]] = {}
    for d in sorted(set(domains.tolist())):
        rows = np.flatnonzero(domains == d)
        stats = aggregate(rows, a_hyps, a_refs, items)
        stats["answerable_correct_rate"] = rounded(np.mean(correct[idx[rows]] & served[idx[rows]]))
        per_domain[d] = stats
    un = np.flatnonzero(~answerable)
    if len(un):
        per_domain[OUT_OF_SCOPE_DOMAIN] = {
            "n": int(len(un)), "abstention_rate": rounded(np.mean(~served[un]))
        }  # fmt: skip
    kinds = np.array([getattr(pairs[i], "kind", "") or "unanswerable" for i in un], dtype=object)
    per_kind = {}
    for k in sorted(set(kinds.tolist())):
        rows = un[kinds == k]
        per_kind[k] = {"n": int(len(rows)), "abstention_rate": rounded(np.mean(~served[rows]))}
    report: dict[str, Any] = {
        "metrics": metrics,
        "counts": {
            "n": n,
            "answerable": int(len(idx)),
            "unanswerable": int(len(un)),
            "served": int(served.sum()),
            "abstained": int((~served).sum()),
            "answerable_correct_served": int((correct & served).sum()),
            "unanswerable_served": int((served & ~answerable).sum()),
        },
        "per_domain": per_domain,
        "per_kind": per_kind,
        "latency_ms": _latency(system, questions[:latency_samples]) if latency_samples else {},
        "examples": [
            {
                "id": p.id,
                "question": p.question,
                "reference": p.answer,
                "answer": h,
                "answerable": bool(a),
                "abstained": not bool(s),
                "confidence": c,
            }
            for p, h, a, s, c in list(zip(pairs, hyps, answerable, served, confs, strict=True))[:5]
        ],
    }
    if curve is not None:
        report["risk_coverage"] = curve
    return report
