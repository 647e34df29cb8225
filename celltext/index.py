"""The retrieval index: known question-answer pairs with teacher embeddings of both sides.

One index serves every retrieval in the package: the phrase-bank fallback of the
predictor and the retrieval baseline of evaluation (``RetrievalSystem``).

Ways to find an answer, from best to last resort:

- ``by_question``: teacher embedding of the question -> nearest train question -> its answer
  (the retrieval baseline; it needs only the teacher, so it works when core or decoder fail);
- ``by_answer``: a predicted answer embedding -> nearest known answer;
- ``lexical``: TF-IDF over the train questions, for when the teacher itself fails.

``speller`` corrects typing errors in a question against the bank's own words before the
teacher embeds it (:mod:`celltext.spelling`).

``search`` is the general top-k over either side, ``top_questions`` the same as arrays;
:func:`nearest_rows` is the nearest row of any embedding matrix (answer ranking in
evaluation, retrieve-and-edit prototypes and validation top-1 in training).
Embedding rows are kept as given (the teacher's are L2-normalised, so a dot product is a
cosine); queries are normalised with :func:`unit_rows`, the package's one row normaliser.
A bank of a release (``for_release``) is searched through an HNSW graph
(:mod:`celltext.ann`, faiss) once it has :data:`celltext.ann.MIN_ROWS` rows, with every
candidate rescored exactly; smaller banks, searches that hide rows (``exclude``) and
``approximate=False`` scan every row.

Building the index of a release embeds every train question and answer once; the result is
stored under ``cache_dir()/phrase_bank/`` keyed by release version, release sha256 and
teacher id, so later processes (every worker of the service) load it in well under a second.
When the cache cannot be written (a full disk) the built index is still used, with a warning.

Shape legend: N pairs, D embedding dim, B queries, k results per query.
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
from typing import Any

import numpy as np

from celltext.paths import DEFAULT_RELEASE, cache_dir

log = logging.getLogger(__name__)

SIDES = ("answer", "question")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    x = np.asarray(x, dtype=np.float32)  # (N, D)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest_rows(
    queries: np.ndarray, rows: np.ndarray, exclude: np.ndarray | None = None, chunk: int = 2048
) -> np.ndarray:
    """Index (B,) of the row of ``rows`` (N, D) nearest to each query (B, D) by cosine, ties
    to the lower index; ``exclude`` (B,) names one row each query may not pick (itself), -1
    for none. Scores ``chunk`` queries at a time, so memory stays (chunk, N) however many
    queries there are (the index's own look-ups use :meth:`RetrievalIndex.search`)."""
    q_all, bank = np.asarray(queries, dtype=np.float32), unit_rows(rows)  # (B, D), (N, D)
    ex = None if exclude is None else np.asarray(exclude, dtype=np.int64)  # (B,)
    out = np.zeros(len(q_all), dtype=np.int64)
    for start in range(0, len(q_all), chunk):
        scores = unit_rows(q_all[start : start + chunk]) @ bank.T  # (c, N)
        if ex is not None:
            own = ex[start : start + chunk]
            hit = np.flatnonzero(own >= 0)
            scores[hit, own[hit]] = -np.inf
        out[start : start + len(scores)] = scores.argmax(axis=1)
    return out


@dataclass(frozen=True)
class Match:
    """One retrieved pair: its answer text, the score of the match (cosine) and its index."""

    text: str
    score: float
    index: int


class RetrievalIndex:
    """Known question-answer pairs with teacher embeddings (N, D) of both sides.

    The rows are stored as given and should be unit vectors (teacher output is), so that
    every score, a unit query times a row, is a cosine; they are not renormalised because a
    saved index must load back bit for bit.
    """

    def __init__(
        self,
        questions: Sequence[str],
        answers: Sequence[str],
        question_embs: np.ndarray,
        answer_embs: np.ndarray,
        source: str = "",
        subjects: Sequence[str] | None = None,
        qtypes: Sequence[str] | None = None,
    ):
        if not (len(questions) == len(answers) == len(question_embs) == len(answer_embs)):
            raise ValueError("questions, answers and both embedding arrays must have equal length")
        if subjects is not None and len(subjects) != len(questions):
            raise ValueError("subjects must have one entry per pair")
        if qtypes is not None and len(qtypes) != len(questions):
            raise ValueError("qtypes must have one entry per pair")
        if not len(questions):
            raise ValueError("a retrieval index needs at least one pair")
        self.questions = list(questions)
        self.answers = list(answers)
        self.question_embs = np.asarray(question_embs, dtype=np.float32)  # (N, D)
        self.answer_embs = np.asarray(answer_embs, dtype=np.float32)  # (N, D)
        if self.question_embs.ndim != 2 or self.question_embs.shape != self.answer_embs.shape:
            raise ValueError(
                f"embeddings must both be (N, D), got {self.question_embs.shape} for the "
                f"questions and {self.answer_embs.shape} for the answers"
            )
        self.source = source
        self.subjects = None if subjects is None else list(subjects)
        self.qtypes = None if qtypes is None else list(qtypes)  # what each pair's question asks
        self._tfidf = None
        self._speller = None
        self._ann: dict[str, Any] = {}  # side -> celltext.ann.HnswSearch

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.question_embs.shape[1])

    def __len__(self) -> int:
        return len(self.questions)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_pairs(
        cls, questions, answers, teacher, source: str = "", subjects=None, qtypes=None
    ) -> RetrievalIndex:
        """Embed ``questions`` and ``answers`` with the teacher (its disk cache is used)."""
        q = teacher.encode(list(questions), progress=len(questions) > 5000)  # (N, D)
        a = teacher.encode(list(answers), progress=len(answers) > 5000)  # (N, D)
        return cls(questions, answers, q, a, source=source, subjects=subjects, qtypes=qtypes)

    @classmethod
    def from_release_pairs(cls, pairs, teacher, source: str = "") -> RetrievalIndex:
        """The index of release pairs (``question``, ``answer``, ``subject``, ``qtype``)."""
        return cls.from_pairs(
            [p.question for p in pairs], [p.answer for p in pairs], teacher, source=source,
            subjects=[p.subject for p in pairs], qtypes=[p.qtype for p in pairs],
        )  # fmt: skip

    @classmethod
    def for_release(
        cls,
        teacher,
        release=DEFAULT_RELEASE,
        split: str = "train",
        root=None,
        build: bool = True,
        approximate: bool = True,
    ) -> RetrievalIndex | None:
        """The index of ``release``'s ``split`` (a version or a loaded release; several
        splits joined by ``+``, as ``train+val+test_unseen``); built once,
        then loaded from the cache, whichever backend's teacher asks (their embeddings agree
        to ~1e-7). ``build=False``: None unless it is cached (``teacher`` may then be just
        the teacher's id, a string: a cached bank loads before any teacher does).
        ``approximate``: search through HNSW graphs cached beside it (:meth:`approximate`)."""
        index, path = cls._for_release(teacher, release, split, root, build)
        if index is not None and approximate:
            index.approximate(path.with_suffix(""))  # the graphs beside the bank's file
        return index

    @classmethod
    def _for_release(cls, teacher, release, split, root, build) -> tuple[Any, Path]:
        """The index (None when not cached and ``build`` is off) and its cache file."""
        from celltext.data.release import load_release

        rel = load_release(release, root=root) if isinstance(release, str) else release
        teacher_id = teacher if isinstance(teacher, str) else teacher.id
        if isinstance(teacher, str) and build:
            raise ValueError("building a retrieval index needs the teacher, not only its id")
        key = f"{rel.version}-{rel.sha256[:16]}-{split}-{_safe(teacher_id)}-st"  # subjects, types
        path = cache_dir() / "phrase_bank" / f"{key}.npz"
        if path.exists():
            try:
                return cls.load(path), path
            except (OSError, ValueError, KeyError) as exc:
                log.warning("retrieval index cache %s unreadable (%s); rebuilding", path, exc)
        if not build:
            return None, path
        pairs = [pair for part in split.split("+") for pair in rel.pairs(part)]
        log.info("building retrieval index from %d %s pairs of release %s", len(pairs), split, key)
        index = cls.from_release_pairs(pairs, teacher, source=key)
        try:
            index.save(path)
        except OSError as exc:  # a full disk must not cost the bank: it is built already
            log.warning(
                "phrase bank cache %s could not be written (%s); the bank is kept in memory "
                "for this process only and will be rebuilt at the next start", path, exc
            )  # fmt: skip
        return index, path

    def approximate(self, stem: str | Path) -> None:
        """Search both sides through HNSW graphs stored at ``<stem>.<side>.hnsw`` (built
        there on first use), when the bank has :data:`celltext.ann.MIN_ROWS` rows and faiss
        is installed; otherwise every search stays a full scan."""
        from celltext import ann

        if len(self) < ann.MIN_ROWS or not ann.available():
            return
        for side, embs in (("question", self.question_embs), ("answer", self.answer_embs)):
            self._ann[side] = ann.HnswSearch.load_or_build(embs, Path(f"{stem}.{side}.hnsw"))

    @property
    def approximated(self) -> bool:
        """Whether searches go through HNSW graphs (:meth:`approximate`)."""
        return bool(self._ann)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the index atomically (``.npz`` with a sha256 of texts and embeddings); on
        failure the temporary file is removed and the error raised."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        texts = json.dumps(
            {
                "q": self.questions,
                "a": self.answers,
                "source": self.source,
                "s": self.subjects,
                "t": self.qtypes,
            }  # fmt: skip
        )
        arrays = {"texts": np.frombuffer(texts.encode(), dtype=np.uint8)}
        arrays["q"], arrays["a"] = self.question_embs, self.answer_embs
        arrays["digest"] = np.array(_digest(arrays))
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, path)
        except BaseException:  # full disk, kill: never leave a (possibly huge) temp file
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> RetrievalIndex:
        """Read an index written by :meth:`save`; a damaged file raises ``ValueError``."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in ("texts", "q", "a")}
                digest = str(data["digest"])
        # ValueError: not an npz at all (np.load then refuses to unpickle it)
        except (zipfile.BadZipFile, EOFError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable retrieval index ({exc})") from exc
        if digest != _digest(arrays):
            raise ValueError(f"{path}: checksum mismatch (the file is damaged)")
        texts = json.loads(arrays["texts"].tobytes().decode())
        return cls(
            texts["q"], texts["a"], arrays["q"], arrays["a"], source=texts["source"],
            subjects=texts.get("s"), qtypes=texts.get("t"),
        )  # fmt: skip

    # -- search ---------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int = 1, side: str = "answer") -> list[list[Match]]:
        """Top-``k`` pairs per query embedding (B, D) or (D,), best first, ties to the lower
        index; ``side`` compares with the ``answer`` or the ``question`` embeddings."""
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        rows, scores = self._top(side, queries, k)  # (B, k) each
        return [
            [Match(self.answers[j], float(s), int(j)) for j, s in zip(r, sc, strict=True)]
            for r, sc in zip(rows, scores, strict=True)
        ]

    def by_question(self, question_embs: np.ndarray) -> list[Match]:
        """For each question embedding (B, D): the answer of the nearest train question."""
        return [hits[0] for hits in self.search(question_embs, 1, side="question")]

    def by_answer(self, answer_embs: np.ndarray) -> list[Match]:
        """For each predicted answer embedding (B, D): the nearest known answer."""
        return [hits[0] for hits in self.search(answer_embs, 1, side="answer")]

    def top_questions(
        self, question_embs: np.ndarray, k: int = 2, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows (B, k) of the ``k`` nearest train questions and their cosines (B, k), best
        first. ``exclude`` (B, N) bool masks rows a query may not match (calibration
        simulates unseen subjects by hiding a question's own subject)."""
        return self._top("question", question_embs, k, exclude)

    def nearest_answers(
        self, answer_embs: np.ndarray, exclude: np.ndarray | None = None
    ) -> np.ndarray:
        """Row (B,) of the known answer nearest to each predicted answer embedding (B, D);
        ``exclude`` as in :meth:`top_questions`."""
        return self._top("answer", answer_embs, 1, exclude)[0][:, 0]

    def _top(
        self, side: str, queries: np.ndarray, k: int, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows (B, k) and scores (B, k) of the ``k`` best rows of ``side`` per query."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))  # (B, D)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"expected embeddings of dimension {self.dim}, got {q.shape}")
        if exclude is None and side in self._ann:
            return self._ann[side].top(unit_rows(q), k)
        embs = self.answer_embs if side == "answer" else self.question_embs
        scores = unit_rows(q) @ embs.T  # (B, N)
        if exclude is not None:
            scores = np.where(exclude, -2.0, scores)
        if k == 1:  # argmax: ties -> lowest index
            rows = scores.argmax(axis=1)[:, None]  # (B, 1)
        else:
            k = min(k, scores.shape[1])
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (B, k) unordered
            # by score (descending), ties by index, so results are deterministic
            order = np.lexsort((part, -np.take_along_axis(scores, part, 1)), axis=1)
            rows = np.take_along_axis(part, order, 1)  # (B, k)
        return rows, np.take_along_axis(scores, rows, 1)

    @property
    def speller(self):
        """A :class:`~celltext.spelling.Speller` over the bank's own words (its questions,
        answers and subjects), built on first use (0.2-0.5 s for 51,000 pairs)."""
        if self._speller is None:
            from celltext.spelling import Speller

            self._speller = Speller([*self.questions, *self.answers, *(self.subjects or ())])
        return self._speller

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


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of the texts and both embedding matrices, read in place (the arrays' own
    buffers: no copy of the 150 MB of a release bank, half the time of ``tobytes``)."""
    h = hashlib.sha256()
    for key in ("texts", "q", "a"):
        h.update(np.ascontiguousarray(arrays[key]))
    return h.hexdigest()
