"""The fallback phrase bank: nearest known answer from a release's train split.

Three ways to find an answer, from best to last resort:

- ``by_question``: teacher embedding of the question -> nearest train question -> its answer
  (the retrieval baseline; it needs only the teacher, so it works when core or decoder fail);
- ``by_answer``: a predicted answer embedding -> nearest known answer;
- ``lexical``: TF-IDF over the train questions, for when the teacher itself fails.

Building the bank embeds every train question and answer once; the result is stored under
``cache_dir()/phrase_bank/`` keyed by release version, release sha256 and teacher id, so
later processes (every worker of the service) load it in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from celltext.paths import cache_dir

log = logging.getLogger(__name__)

LAST_RESORT_ANSWER = "Sorry, I cannot answer that right now."


@dataclass(frozen=True)
class Match:
    """One retrieved answer: its text, the score of the match (cosine) and the pair index."""

    text: str
    score: float
    index: int


class FallbackBank:
    """Known question-answer pairs with teacher embeddings of both sides."""

    def __init__(
        self,
        questions: Sequence[str],
        answers: Sequence[str],
        question_embs: np.ndarray,
        answer_embs: np.ndarray,
        source: str = "",
        subjects: Sequence[str] | None = None,
    ):
        if not (len(questions) == len(answers) == len(question_embs) == len(answer_embs)):
            raise ValueError("questions, answers and both embedding arrays must have equal length")
        if subjects is not None and len(subjects) != len(questions):
            raise ValueError("subjects must have one entry per pair")
        if not len(questions):
            raise ValueError("a phrase bank needs at least one pair")
        self.questions = list(questions)
        self.answers = list(answers)
        self.question_embs = np.asarray(question_embs, dtype=np.float32)  # (N, D)
        self.answer_embs = np.asarray(answer_embs, dtype=np.float32)  # (N, D)
        self.source = source
        self.subjects = None if subjects is None else list(subjects)
        self._tfidf = None

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.question_embs.shape[1])

    def __len__(self) -> int:
        return len(self.questions)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_pairs(
        cls, questions, answers, teacher, source: str = "", subjects=None
    ) -> FallbackBank:
        """Embed ``questions`` and ``answers`` with the teacher (its disk cache is used)."""
        q = teacher.encode(list(questions), progress=len(questions) > 5000)  # (N, D)
        a = teacher.encode(list(answers), progress=len(answers) > 5000)  # (N, D)
        return cls(questions, answers, q, a, source=source, subjects=subjects)

    @classmethod
    def from_release_pairs(cls, pairs, teacher, source: str = "") -> FallbackBank:
        """The bank of release pairs (``question``, ``answer``, ``subject``)."""
        return cls.from_pairs(
            [p.question for p in pairs], [p.answer for p in pairs], teacher, source=source,
            subjects=[p.subject for p in pairs],
        )  # fmt: skip

    @classmethod
    def for_release(cls, teacher, release: str = "v1", split: str = "train", root=None):
        """The bank of ``release``'s ``split``; built once, then loaded from the cache."""
        from celltext.data.release import load_release

        rel = load_release(release, root=root)
        key = f"{rel.version}-{rel.sha256[:16]}-{split}-{_safe(teacher.id)}-s"
        path = cache_dir() / "phrase_bank" / f"{key}.npz"
        if path.exists():
            try:
                return cls.load(path)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("phrase bank cache %s unreadable (%s); rebuilding", path, exc)
        pairs = rel.pairs(split)
        log.info("building phrase bank from %d %s pairs of release %s", len(pairs), split, key)
        bank = cls.from_release_pairs(pairs, teacher, source=key)
        bank.save(path)
        return bank

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the bank atomically (``.npz`` with a checksum)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        texts = json.dumps(
            {"q": self.questions, "a": self.answers, "source": self.source, "s": self.subjects}
        )
        arrays = {"texts": np.frombuffer(texts.encode(), dtype=np.uint8)}
        arrays["q"], arrays["a"] = self.question_embs, self.answer_embs
        arrays["digest"] = np.array(_digest(arrays))
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FallbackBank:
        """Read a bank written by :meth:`save`; a damaged file raises ``ValueError``."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in ("texts", "q", "a")}
                digest = str(data["digest"])
        except (zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise ValueError(f"{path}: unreadable phrase bank ({exc})") from exc
        if digest != _digest(arrays):
            raise ValueError(f"{path}: checksum mismatch")
        texts = json.loads(arrays["texts"].tobytes().decode())
        return cls(
            texts["q"], texts["a"], arrays["q"], arrays["a"], source=texts["source"],
            subjects=texts.get("s"),
        )  # fmt: skip

    # -- search ---------------------------------------------------------------------------
    def by_question(self, question_embs: np.ndarray) -> list[Match]:
        """For each question embedding (B, D): the answer of the nearest train question."""
        return self._nearest(self.question_embs, question_embs)

    def by_answer(self, answer_embs: np.ndarray) -> list[Match]:
        """For each predicted answer embedding (B, D): the nearest known answer."""
        return self._nearest(self.answer_embs, answer_embs)

    def top_questions(
        self, question_embs: np.ndarray, k: int = 2, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows (B, k) of the ``k`` nearest train questions and their cosines (B, k), best
        first. ``exclude`` (B, N) bool masks rows a query may not match (calibration
        simulates unseen subjects by hiding a question's own subject)."""
        q = np.atleast_2d(np.asarray(question_embs, dtype=np.float32))  # (B, D)
        if q.shape[1] != self.dim:
            raise ValueError(f"expected embeddings of dimension {self.dim}, got {q.shape}")
        scores = _unit(q) @ self.question_embs.T  # (B, N)
        if exclude is not None:
            scores = np.where(exclude, -2.0, scores)
        k = min(k, scores.shape[1])
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (B, k) unordered
        order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
        rows = np.take_along_axis(part, order, 1)
        return rows, np.take_along_axis(scores, rows, 1)

    def _nearest(self, index: np.ndarray, queries: np.ndarray) -> list[Match]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))  # (B, D)
        if queries.shape[1] != self.dim:
            raise ValueError(f"expected embeddings of dimension {self.dim}, got {queries.shape}")
        norms = np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)  # (B, 1)
        scores = (queries / norms) @ index.T  # (B, N)
        best = scores.argmax(axis=1)  # (B,)
        return [Match(self.answers[j], float(scores[i, j]), int(j)) for i, j in enumerate(best)]

    def lexical(self, questions: Sequence[str]) -> list[Match]:
        """TF-IDF nearest train question (no teacher needed)."""
        if self._tfidf is None:
            from sklearn.feature_extraction.text import TfidfVectorizer

            vec = TfidfVectorizer(lowercase=True, ngram_range=(1, 2), sublinear_tf=True)
            self._tfidf = (vec, vec.fit_transform(self.questions))  # (N, V) sparse
        vec, matrix = self._tfidf
        scores = (vec.transform(list(questions)) @ matrix.T).toarray()  # (B, N)
        best = scores.argmax(axis=1)  # (B,)
        return [Match(self.answers[j], float(scores[i, j]), int(j)) for i, j in enumerate(best)]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in ("texts", "q", "a"):
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()
