"""The production path's candidate answers and their features (see :mod:`.selector`).

One place builds them, for serving and for calibration alike, so the selector is fitted
on exactly the features it is later applied to.

Shapes: B questions, N bank pairs, D teacher dim, F features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from celltext.index import unit_rows
from celltext.inference.quality import degeneration_factor
from celltext.inference.selector import Features, candidate_matrix, subject_in_question


@dataclass
class Candidates:
    """The production path's candidates for B questions (:meth:`Predictor.candidates`)."""

    found: Retrieved
    texts: dict[str, list[str]]
    """Kind -> B texts: ``retrieved``, ``nearest`` and the model's own (``model_kind``)."""
    matrices: dict[str, np.ndarray]
    """Kind -> (B, F) selector features."""
    model_kind: str | None = None
    """``edited`` or ``generated``; None when the model's stage failed."""
    model_texts: list[str] | None = None
    model_embs: np.ndarray | None = None
    """(B, D) teacher embeddings of ``model_texts``."""
    failure: str | None = None
    """Why the model has no candidate (a stage error's reason), else None."""


@dataclass
class Retrieved:
    """What the phrase bank offers for B questions."""

    features: Features
    retrieved: np.ndarray  # (B,) bank row of the nearest question (the ranker's choice)
    nearest: np.ndarray  # (B,) bank row of the answer nearest to the core's prediction


def retrieve(
    bank, questions, q_embs, preds, exclude: np.ndarray | None = None, ranker=None
) -> Retrieved:
    """Look the questions up in the bank. ``exclude`` (B, N) hides rows per question
    (calibration hides a question's own subject to imitate an unseen one). With a
    :class:`~celltext.inference.ranking.Ranker` the retrieved fact is the ranker's choice
    among the nearest known questions, not simply the nearest."""
    k = max(2, ranker.top_k) if ranker is not None else 2  # one scan for both
    rows, scores = bank.top_questions(q_embs, k=k, exclude=exclude)  # (B, k)
    retrieved = rows[:, 0]
    ranked = None
    if ranker is not None:
        ranked = ranker.rank(questions, q_embs, preds, bank, found=(rows, scores))
        retrieved = ranked.rows
    preds = unit_rows(preds)  # (B, D)
    nearest = bank.nearest_answers(preds, exclude)  # (B,)
    subjects = bank.subjects or [None] * len(bank)
    feats = Features(
        q_top1=scores[:, 0].astype(np.float64),
        q_margin=(scores[:, 0] - scores[:, 1]).astype(np.float64),
        subject_in_question=np.array(
            [subject_in_question(subjects[r], q) for r, q in zip(retrieved, questions, strict=True)]
        ),
        core_agrees=np.sum(preds * bank.answer_embs[retrieved], axis=1).astype(np.float64),
        rank_prob=None if ranked is None else ranked.prob.astype(np.float64),
        rank_null=None if ranked is None else ranked.null.astype(np.float64),
        intent_match=None if ranked is None else ranked.intent_match.astype(np.float64),
    )
    return Retrieved(feats, retrieved, nearest)


def candidate_matrices(
    bank,
    found: Retrieved,
    q_embs: np.ndarray,
    preds: np.ndarray,
    model_kind: str | None = None,
    model_texts: list[str] | None = None,
    model_embs: np.ndarray | None = None,
) -> tuple[dict[str, list[str]], dict[str, np.ndarray]]:
    """Texts and feature matrices (B, F) per candidate kind: ``retrieved``, ``nearest`` and,
    when the model produced text, ``model_kind`` (``edited`` or ``generated``)."""
    q, e = unit_rows(q_embs), unit_rows(preds)
    texts = {
        "retrieved": [bank.answers[r] for r in found.retrieved],
        "nearest": [bank.answers[r] for r in found.nearest],
    }
    embs = {
        "retrieved": bank.answer_embs[found.retrieved],
        "nearest": bank.answer_embs[found.nearest],
    }
    if model_kind is not None and model_texts is not None and model_embs is not None:
        texts[model_kind] = list(model_texts)
        embs[model_kind] = unit_rows(model_embs)
    retrieved = texts["retrieved"]
    matrices = {}
    for kind, cand in texts.items():
        reps = [degeneration_factor(t) for t in cand]
        same = [float(t == r) for t, r in zip(cand, retrieved, strict=True)]
        matrices[kind] = candidate_matrix(
            found.features, embs[kind], e, q, reps, same, embs["retrieved"]
        )
    return texts, matrices
