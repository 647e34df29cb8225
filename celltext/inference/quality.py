"""Quality check of generated answers: teacher re-embedding and coherence -> confidence.

For each answer ``a`` to question ``q`` with predicted answer embedding ``e`` (the core's
output, or the raw input embedding of ``/v1/decode``):

- ``similarity = cos(teacher(a), e)``: did the decoder write what the core meant?
- ``coherence`` from :func:`celltext.metrics.coherence` (repetition,
  completeness, on-topic; one definition shared with ``celltext eval``);
- ``confidence = w * clip(similarity, 0, 1) + (1 - w) * coherence`` in 0..1, ``w`` the
  ``similarity_weight`` (0.7 by default; without coherence the confidence is the clipped
  similarity alone), times :func:`degeneration_factor` (repeated text loses confidence,
  a word four times in a row all of it).

The teacher is called without its disk cache: serving traffic must not write a cache
segment per request, and every embedding computed here is reused (question embeddings
from the first stage, answer embeddings shared between similarity and coherence).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from celltext.index import unit_rows


@dataclass(frozen=True)
class Quality:
    """Quality of one generated answer (all in 0..1 except ``similarity``, a cosine)."""

    similarity: float
    coherence: float | None
    confidence: float


_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class LockedTeacher:
    """A teacher whose ``encode`` runs under one lock per underlying teacher object.

    Hugging Face fast tokenizers are not safe to call from several threads at once (they
    raise "Already borrowed"), and the service runs the predictor in a thread pool.
    """

    def __init__(self, teacher):
        self.inner = teacher
        self.id = getattr(teacher, "id", "teacher")
        self.dim = teacher.dim
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(id(teacher), threading.Lock())

    def encode(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        """``teacher.encode`` under the lock."""
        with self._lock:
            return self.inner.encode(list(texts), **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


class MemoTeacher:
    """Teacher adapter: known texts come from a memo, the rest are encoded without disk cache."""

    def __init__(self, teacher, known: dict[str, np.ndarray] | None = None):
        self.teacher = teacher
        self.id = getattr(teacher, "id", "teacher")
        self.dim = teacher.dim
        self.known: dict[str, np.ndarray] = dict(known or {})

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, **_):
        """Embeddings (N, dim) float32; each distinct unknown text is encoded once."""
        texts = list(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self.known))
        if missing:
            vecs = self.teacher.encode(missing, batch_size=batch_size, cache=False)  # (M, D)
            self.known.update(zip(missing, np.asarray(vecs, dtype=np.float32), strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.known[t] for t in texts])  # (N, D)


def degeneration_factor(text: str) -> float:
    """Repetition guard on the confidence: the repetition score (1: no repeated n-grams),
    and 0 for a word repeated more than 3 times in a row ("memory memory memory memory")."""
    from celltext.metrics import repetition_score

    words = text.lower().split()
    run = longest = 1 if words else 0
    for a, b in zip(words, words[1:], strict=False):
        run = run + 1 if a == b else 1
        longest = max(longest, run)
    return 0.0 if longest > 3 else float(repetition_score(text)) if words else 1.0


class QualityAssessor:
    """Scores answers against the embeddings they were decoded from."""

    def __init__(self, teacher, similarity_weight: float = 0.7, use_coherence: bool = True):
        if not 0.0 <= similarity_weight <= 1.0:
            raise ValueError(f"similarity_weight must be in 0..1, got {similarity_weight}")
        self.teacher = teacher
        self.similarity_weight = similarity_weight
        self.use_coherence = use_coherence

    def assess(
        self,
        questions: Sequence[str] | None,
        answers: Sequence[str],
        targets: np.ndarray,
        question_embs: np.ndarray | None = None,
    ) -> list[Quality]:
        """Quality of each answer; ``questions=None`` (raw decoding) skips coherence."""
        answers = list(answers)
        targets = unit_rows(targets)  # (N, D)
        if len(targets) != len(answers):
            raise ValueError(f"{len(answers)} answers but {len(targets)} target embeddings")
        memo = MemoTeacher(self.teacher)
        if questions is not None and question_embs is not None:
            memo.known.update(
                zip(questions, np.asarray(question_embs, dtype=np.float32), strict=True)
            )
        answer_embs = memo.encode(answers)  # (N, D)
        sims = np.sum(unit_rows(answer_embs) * targets, axis=1)  # (N,)
        coh = self._coherence(questions, answers, memo)
        out = []
        for i, sim in enumerate(sims.tolist()):
            c = None if coh is None else float(coh[i])
            conf = self.confidence(float(sim), c) * degeneration_factor(answers[i])
            out.append(Quality(float(sim), c, conf))
        return out

    def _coherence(self, questions, answers, memo) -> np.ndarray | None:
        if not self.use_coherence or questions is None:
            return None
        from celltext.metrics import coherence

        return np.asarray(coherence(list(questions), answers, teacher=memo).scores)

    def confidence(self, similarity: float, coherence: float | None) -> float:
        """Combine similarity and coherence into a confidence in 0..1."""
        sim = min(1.0, max(0.0, similarity))
        if coherence is None:
            return sim
        w = self.similarity_weight
        return float(min(1.0, max(0.0, w * sim + (1.0 - w) * coherence)))
