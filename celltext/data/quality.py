"""Quality control: well-formedness, complexity, duplicates (exact and near), coherence.

Each check returns what it rejected with a reason, so the build report can count them:

* :func:`well_formed` — an answer is one or two clean English sentences within the
  token budget, without markup, URLs or offensive words; a subject is short and clean.
* :func:`complexity` — a 0..1 score per answer (length, long and rare words, clauses),
  stored in the release's annotations for curriculum or stratified evaluation.
* :func:`exact_duplicates` — same normalised question, or same normalised answer core for
  the same question type, keeps the first (sources are ordered by trust).
* :func:`near_duplicates` — teacher-embedding cosine of answer cores above a threshold
  (same question type, different subjects), keeps the first.
* :func:`coherence` — teacher cosine between the subject and the answer core: an answer
  that is not about its subject (a mis-parsed entry, a docstring of a different object)
  scores low and is dropped below a floor.

Cosines are computed in float64 and quantised to :data:`SCORE_DECIMALS` (:func:`quantise`)
before they are compared with a threshold or written: the value a decision uses is the
value stored, and float noise from another CPU (a different SIMD path) only matters for a
value within that noise of a rounding midpoint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import numpy as np

from celltext.data.clean import (
    MAX_ANSWER_TOKENS,
    balanced,
    common_words,
    english_ratio,
    normalise_for_match,
    token_count,
)
from celltext.data.schema import Fact

# Words that should not appear in a dataset people will train assistants on.
_OFFENSIVE = re.compile(
    r"\b(fuck\w*|shit\w*|bullshit|cunt|wank\w*|nigger\w*|faggot\w*|bitch\w*|whore\w*|"
    r"slut\w*|retard\w*|dick|cock|pussy|asshole|bastard|porn\w*|rape\w*|nazi\w*)\b",
    re.I,
)
_MARKUP = re.compile(r"[{}<>|\\]|\[\[|\]\]|https?:|www\.|@\w+\.")
# Question types whose answers are free text (the others are templated sentences).
FREE_TEXT_QTYPES = frozenset({"definition", "function", "purpose", "example"})


def well_formed(fact: Fact, max_tokens: int = MAX_ANSWER_TOKENS) -> str | None:
    """None if the fact is well formed, else the reason it is not."""
    answer, subject = fact.answer, fact.subject
    if not subject.strip() or len(subject) > 60 or "\n" in subject or "\n" in answer:
        return "bad_subject"
    if len(answer.split()) < 4:
        return "answer_too_short"
    if answer[-1] not in ".!?\"'" or not answer[:1].isupper():
        return "not_a_sentence"
    if token_count(answer) > max_tokens:
        return "answer_too_long"
    if _MARKUP.search(answer) or not balanced(answer):
        return "markup_left"
    if _OFFENSIVE.search(answer) or _OFFENSIVE.search(subject):
        return "offensive"
    if fact.qtype in FREE_TEXT_QTYPES and english_ratio(fact.core) < 0.6:
        return "not_english"
    if re.search(r"(\b\w+\b)( \1\b){2,}", answer):
        return "repetition"
    return None


def complexity(text: str) -> float:
    """0..1: longer answers, longer and rarer words, and more clauses score higher."""
    words = re.findall(r"[A-Za-z]+", text)
    if not words:
        return 0.0
    vocab = common_words()
    length = min(len(words) / 40.0, 1.0)
    long_words = sum(len(w) >= 9 for w in words) / len(words)
    rare = sum(w.lower() not in vocab for w in words) / len(words)
    clauses = min(len(re.findall(r"[,;:()]| which | that | where ", text)) / 6.0, 1.0)
    return round(0.35 * length + 0.25 * long_words + 0.25 * rare + 0.15 * clauses, 4)


def exact_duplicates(facts: list[Fact], question_of: Callable[[Fact], str]) -> list[int]:
    """Indices of facts whose normalised question was seen before, or (for free-text
    types) whose normalised answer core was seen before for the same question type."""
    seen_q: set[str] = set()
    seen_a: set[tuple[str, str]] = set()
    dropped = []
    for i, fact in enumerate(facts):
        q = normalise_for_match(question_of(fact))
        a = (fact.qtype, normalise_for_match(fact.core))
        if q in seen_q or (fact.qtype in FREE_TEXT_QTYPES and a in seen_a):
            dropped.append(i)
            continue
        seen_q.add(q)
        seen_a.add(a)
    return dropped


# Decimals of every score that is compared or stored (coherence, near-duplicate cosines).
SCORE_DECIMALS = 4


def quantise(scores: np.ndarray | float) -> np.ndarray:
    """``scores`` in float64, rounded to :data:`SCORE_DECIMALS`."""
    return np.round(np.asarray(scores, dtype=np.float64), SCORE_DECIMALS)


def near_duplicates(
    vectors: np.ndarray, subjects: list[str], threshold: float, block: int = 256
) -> list[int]:
    """Indices of items that nearly duplicate an earlier kept item about another subject.

    ``vectors`` (N, D) are L2-normalised teacher embeddings of answer cores (one question
    type); item i is dropped when cos(i, j) >= ``threshold`` for a kept j < i whose
    subject differs (``cos`` in float64, quantised).
    """
    vectors = np.asarray(vectors, dtype=np.float64)  # (N, D)
    n = len(vectors)
    keep = np.ones(n, dtype=bool)
    subj = np.array([s.lower() for s in subjects])
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = quantise(vectors[start:stop] @ vectors[:stop].T)  # (b, stop)
        for row in range(stop - start):
            i = start + row
            hits = np.nonzero(sims[row, :i] >= threshold)[0]
            if hits.size and np.any(keep[hits] & (subj[hits] != subj[i])):
                keep[i] = False
    return np.nonzero(~keep)[0].tolist()


def coherence(subject_vecs: np.ndarray, core_vecs: np.ndarray) -> np.ndarray:
    """Row-wise cosine (N,) float64 between subject and answer-core embeddings (both
    normalised); the build quantises it before use."""
    a = np.asarray(subject_vecs, dtype=np.float64)  # (N, D)
    b = np.asarray(core_vecs, dtype=np.float64)  # (N, D)
    return np.einsum("nd,nd->n", a, b)  # (N,)


def summarise(scores: Iterable[float]) -> dict[str, float]:
    """Mean and quartiles of a score, for the build report."""
    arr = np.asarray(list(scores), dtype=np.float64)
    if arr.size == 0:
        return {"mean": 0.0, "p25": 0.0, "p50": 0.0, "p75": 0.0}
    p25, p50, p75 = np.percentile(arr, [25, 50, 75])
    return {"mean": round(float(arr.mean()), 4), "p25": round(float(p25), 4)} | {
        "p50": round(float(p50), 4),
        "p75": round(float(p75), 4),
    }
