"""Quality metrics: one definition, used by training validation, ``celltext eval`` and the API.

Definitions (DESIGN.md "Metrics"):

- **BLEU** ``sacrebleu.corpus_bleu(hyps, [refs]).score / 100`` (corpus level, 0..1).
- **chrF** ``sacrebleu.corpus_chrf(hyps, [refs]).score / 100`` (0..1).
- **ROUGE-L** mean ``rouge_score`` F-measure with Porter stemming (0..1).
- **semantic similarity** mean cosine between default-teacher embeddings of hypothesis and
  reference.
- **embedding preservation** mean cosine between the *input* embedding of the decoder and
  the teacher embedding of the decoded text.
- **exact match** fraction of pairs equal after lower-casing, removing punctuation and
  collapsing whitespace (:func:`normalize_text`).
- **coherence** composite in 0..1 per item (:func:`coherence`)::

      coherence = repetition * (completeness + on_topic) / 2

  ``repetition = 1 - max(dup2, dup3, stutter)`` where ``dupN`` is the fraction of word
  n-grams that repeat an earlier n-gram of the same answer and ``stutter`` the fraction of
  words equal to the word before (so "the the the the" scores ~0); ``completeness`` the
  mean of three checks: at least 3 words, starts with an upper-case letter or a digit,
  ends with ``.``, ``!`` or ``?``; ``on_topic = clip((cos(q, a) - low) / (floor - low), 0, 1)``
  with the teacher cosine between question and answer, ``low = 0.15`` and
  ``floor = 0.35``: at or above the floor an answer is fully on topic, at or below ``low``
  (the median cosine between a question and an answer about another subject, for MiniLM)
  it is off topic. Calibration: reference answers of the release score ~1.0, answers
  shuffled across subjects ~0.5-0.6. Degenerate repetition multiplies everything away; an
  off-topic but well-formed sentence keeps about half.
- **unknown-token rate** fraction of tokens that are the tokenizer's unknown token or a
  literal ``<unk>``. Byte-level BPE has no unknown token, so it must be 0.
- **invalid-character rate** fraction of characters that are U+FFFD (what a byte-level
  decoder writes for invalid UTF-8; an untrained decoder produces some).
- **latency** p50/p95/mean in milliseconds (:func:`latency_summary`).

The teacher is any object with ``encode(texts) -> (N, D)`` L2-normalised float32 (the
:class:`celltext.teacher.Teacher` contract); ``None`` loads the default teacher.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from celltext.index import unit_rows

COHERENCE_ON_TOPIC_LOW = 0.15
COHERENCE_ON_TOPIC_FLOOR = 0.35
COHERENCE_MIN_WORDS = 3

_PUNCT_RE = re.compile(f"[{re.escape(string.punctuation)}]")
_SPACE_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"[\w']+", re.UNICODE)


class TeacherLike(Protocol):
    """The part of :class:`celltext.teacher.Teacher` the metrics need."""

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> Any: ...


def _teacher(teacher: TeacherLike | None) -> TeacherLike:
    if teacher is not None:
        return teacher
    from celltext.teacher import load_teacher  # imported lazily: loading torch models is slow

    return load_teacher()


def _check_lengths(a: Sequence, b: Sequence, what: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{what}: {len(a)} hypotheses but {len(b)} references")


def _mean(values: Sequence[float] | np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else 0.0


# -- surface overlap ---------------------------------------------------------------------------
def bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus BLEU in 0..1: ``sacrebleu.corpus_bleu(hyps, [refs]).score / 100``."""
    import sacrebleu

    _check_lengths(hyps, refs, "bleu")
    if not hyps:
        return 0.0
    score = sacrebleu.corpus_bleu(list(hyps), [list(refs)]).score / 100.0
    return float(min(1.0, max(0.0, score)))  # sacrebleu can give 100.00000000000004


def chrf(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus chrF in 0..1 (sacrebleu defaults: character 6-grams, beta 2)."""
    import sacrebleu

    _check_lengths(hyps, refs, "chrf")
    if not hyps:
        return 0.0
    score = sacrebleu.corpus_chrf(list(hyps), [list(refs)]).score / 100.0
    return float(min(1.0, max(0.0, score)))


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_scores(hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """Per-item ROUGE-L F-measure with stemming, shape (N,)."""
    _check_lengths(hyps, refs, "rouge_l")
    scorer = _rouge_scorer()
    # rouge_score's signature is score(target, prediction).
    scores = [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs, strict=True)]
    return np.array(scores, dtype=np.float64)


def rouge_l(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure with stemming (0..1)."""
    return _mean(rouge_l_scores(hyps, refs))


# -- exact match -------------------------------------------------------------------------------
def normalize_text(text: str) -> str:
    """Lower-case, drop ASCII punctuation, collapse whitespace (the exact-match normal form)."""
    return _SPACE_RE.sub(" ", _PUNCT_RE.sub(" ", text.lower())).strip()


def exact_match_scores(hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """Per-item exact match (0.0 or 1.0) after :func:`normalize_text`."""
    _check_lengths(hyps, refs, "exact_match")
    same = [normalize_text(h) == normalize_text(r) for h, r in zip(hyps, refs, strict=True)]
    return np.array(same, dtype=np.float64)


def exact_match(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Fraction of hypotheses equal to their reference after :func:`normalize_text`."""
    return _mean(exact_match_scores(hyps, refs))


# -- embedding metrics -------------------------------------------------------------------------
def _encode(teacher: TeacherLike | None, texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    return unit_rows(np.asarray(_teacher(teacher).encode(list(texts)), dtype=np.float32))


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine between (N, D) arrays, shape (N,)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"cosine_rows: shapes {a.shape} and {b.shape} differ")
    if len(a) == 0:
        return np.zeros(0, dtype=np.float64)
    return np.sum(unit_rows(a) * unit_rows(b), axis=1).astype(np.float64)


def semantic_similarity_scores(
    hyps: Sequence[str], refs: Sequence[str], teacher: TeacherLike | None = None
) -> np.ndarray:
    """Per-item teacher cosine between hypothesis and reference, shape (N,)."""
    _check_lengths(hyps, refs, "semantic_similarity")
    if not hyps:
        return np.zeros(0, dtype=np.float64)
    embs = _encode(teacher, list(hyps) + list(refs))  # (2N, D)
    return cosine_rows(embs[: len(hyps)], embs[len(hyps) :])


def semantic_similarity(
    hyps: Sequence[str], refs: Sequence[str], teacher: TeacherLike | None = None
) -> float:
    """Mean teacher cosine between generated text and reference."""
    return _mean(semantic_similarity_scores(hyps, refs, teacher))


def embedding_preservation_scores(
    hyps: Sequence[str], embs: np.ndarray, teacher: TeacherLike | None = None
) -> np.ndarray:
    """Per-item cosine between the decoder's input embedding and the decoded text's, (N,)."""
    embs = np.asarray(embs, dtype=np.float32)  # (N, D)
    _check_lengths(hyps, embs, "embedding_preservation")
    if not hyps:
        return np.zeros(0, dtype=np.float64)
    return cosine_rows(embs, _encode(teacher, hyps))


def embedding_preservation(
    hyps: Sequence[str], embs: np.ndarray, teacher: TeacherLike | None = None
) -> float:
    """Mean cosine between input embeddings and teacher embeddings of the decoded texts."""
    return _mean(embedding_preservation_scores(hyps, embs, teacher))


# -- coherence ---------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _dup_ratio(words: list[str], n: int) -> float:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def repetition_score(text: str) -> float:
    """1 minus the worst of: repeated bigram ratio, repeated trigram ratio, stutter ratio."""
    words = _words(text)
    if not words:
        return 0.0
    stutter = sum(a == b for a, b in zip(words, words[1:], strict=False)) / max(1, len(words) - 1)
    return 1.0 - max(_dup_ratio(words, 2), _dup_ratio(words, 3), stutter)


def completeness_score(text: str) -> float:
    """Mean of: >= 3 words, starts upper-case/digit, ends with terminal punctuation."""
    stripped = text.strip().strip("\"')]")
    if not stripped:
        return 0.0
    checks = (
        len(_words(stripped)) >= COHERENCE_MIN_WORDS,
        stripped[0].isupper() or stripped[0].isdigit(),
        stripped[-1] in ".!?",
    )
    return sum(checks) / len(checks)


@dataclass
class CoherenceResult:
    """Per-item coherence and its components (all arrays of shape (N,)), plus the mean."""

    scores: np.ndarray
    repetition: np.ndarray
    completeness: np.ndarray
    on_topic: np.ndarray
    mean: float = field(init=False)

    def __post_init__(self) -> None:
        self.mean = _mean(self.scores)

    def summary(self) -> dict[str, float]:
        """Means of the composite and of each component."""
        return {
            "coherence": self.mean,
            "repetition": _mean(self.repetition),
            "completeness": _mean(self.completeness),
            "on_topic": _mean(self.on_topic),
        }


def coherence(
    questions: Sequence[str],
    answers: Sequence[str],
    teacher: TeacherLike | None = None,
    floor: float = COHERENCE_ON_TOPIC_FLOOR,
    low: float = COHERENCE_ON_TOPIC_LOW,
) -> CoherenceResult:
    """Coherence composite per answer: ``repetition * (completeness + on_topic) / 2``.

    See the module docstring for each component. Empty answers score 0.
    """
    _check_lengths(answers, questions, "coherence")
    n = len(answers)
    rep = np.array([repetition_score(a) for a in answers], dtype=np.float64)
    comp = np.array([completeness_score(a) for a in answers], dtype=np.float64)
    if n:
        embs = _encode(teacher, list(questions) + list(answers))  # (2N, D)
        cos = cosine_rows(embs[:n], embs[n:])
        topic = np.clip((cos - low) / (floor - low), 0.0, 1.0)
    else:
        topic = np.zeros(0, dtype=np.float64)
    empty = np.array([not a.strip() for a in answers], dtype=bool)
    topic[empty] = 0.0
    scores = rep * (comp + topic) / 2.0
    return CoherenceResult(scores=scores, repetition=rep, completeness=comp, on_topic=topic)


# -- tokens and latency ------------------------------------------------------------------------
def unknown_token_rate(texts: Sequence[str], tokenizer: Any | None = None) -> float:
    """Fraction of unknown tokens in ``texts`` (0 is the only acceptable value).

    With a tokenizer: tokens equal to its ``unk_id`` (byte-level BPE has none) plus literal
    ``<unk>`` markers in the text, over the tokenizer's token count. Without: whitespace
    words containing ``<unk>``, over the word count.
    """
    total = unknown = 0
    unk_id = getattr(tokenizer, "unk_id", None) if tokenizer is not None else None
    for text in texts:
        if tokenizer is not None:
            ids = tokenizer.encode(text)
            total += len(ids)
            unknown += sum(1 for i in ids if unk_id is not None and i == unk_id)
        else:
            total += len(text.split())
        unknown += text.lower().count("<unk>")
    return unknown / total if total else 0.0


def invalid_char_rate(texts: Sequence[str]) -> float:
    """Fraction of characters that are U+FFFD, the replacement a byte-level decoder writes
    for an invalid UTF-8 byte sequence (a generation defect distinct from unknown tokens)."""
    total = sum(len(t) for t in texts)
    return sum(t.count("\ufffd") for t in texts) / total if total else 0.0


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """``{n, p50, p95, mean, max}`` in milliseconds (numpy linear-interpolated percentiles)."""
    arr = np.asarray(latencies_ms, dtype=np.float64)
    if arr.size == 0:
        return {"n": 0, "p50": 0.0, "p95": 0.0, "mean": 0.0, "max": 0.0}
    return {
        "n": int(arr.size),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "mean": float(arr.mean()),
        "max": float(arr.max()),
    }


def text_metrics(
    questions: Sequence[str],
    hyps: Sequence[str],
    refs: Sequence[str],
    teacher: TeacherLike | None = None,
) -> dict[str, float]:
    """The standard quality block for answers to ``questions``: every text metric above."""
    coh = coherence(questions, hyps, teacher)
    return {
        "bleu": bleu(hyps, refs),
        "chrf": chrf(hyps, refs),
        "rouge_l": rouge_l(hyps, refs),
        "semantic_similarity": semantic_similarity(hyps, refs, teacher),
        "exact_match": exact_match(hyps, refs),
        "coherence": coh.mean,
        "unknown_token_rate": unknown_token_rate(hyps),
        "invalid_char_rate": invalid_char_rate(hyps),
    }
