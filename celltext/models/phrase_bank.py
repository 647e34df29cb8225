"""Phrase bank: retrieval over known answers by cosine similarity (numpy).

The baseline every generative decoder must beat, and the production fallback: given a
predicted answer embedding, return the nearest known answer text. Embeddings are stored
L2-normalised so cosine similarity is one matrix product; top-k uses ``argpartition``
(O(N) per query) then sorts the k winners. At the release's scale (tens of thousands of
answers, 384-D) a query batch takes milliseconds, so FAISS is not needed.

On disk (a directory): ``embeddings.npy`` (float32, (N, D), no pickle) and
``phrase_bank.json`` (texts, dimension, count, sha256 of the embedding bytes, which
:meth:`PhraseBank.load` verifies).

Shape legend: N entries, D embedding dim, B queries, k results per query.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

EMBEDDINGS_FILE = "embeddings.npy"
META_FILE = "phrase_bank.json"
FORMAT_VERSION = 1


class PhraseBankIntegrityError(ValueError):
    """The files of a saved phrase bank do not match each other or their recorded hash."""


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


class PhraseBank:
    """Known texts with their embeddings; :meth:`search` returns (index, cosine) pairs."""

    def __init__(self, texts: Sequence[str], embeddings: np.ndarray):
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2:
            raise ValueError(f"embeddings must have shape (N, D), got {embeddings.shape}")
        if len(texts) != embeddings.shape[0]:
            raise ValueError(
                f"{len(texts)} texts but {embeddings.shape[0]} embeddings; they must match"
            )
        if not np.isfinite(embeddings).all():
            raise ValueError("embeddings contain NaN or inf")
        self.texts: list[str] = [str(t) for t in texts]
        self.embeddings: np.ndarray = _normalise(embeddings)  # (N, D), unit rows

    @classmethod
    def from_teacher(cls, texts: Sequence[str], teacher: Any, batch_size: int = 64) -> PhraseBank:
        """Embed ``texts`` with a teacher (``celltext.teacher.Teacher``) and index them.

        Duplicate texts are kept once (first occurrence).
        """
        unique = list(dict.fromkeys(texts))
        return cls(unique, teacher.encode(unique, batch_size=batch_size))

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def __len__(self) -> int:
        return len(self.texts)

    def similarities(self, emb: np.ndarray) -> np.ndarray:
        """Cosine similarity of each query to every entry: (B, D) -> (B, N)."""
        queries = np.asarray(emb, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]  # (1, D)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(
                f"expected query embeddings of shape (B, {self.dim}), got {np.shape(emb)}"
            )
        return _normalise(queries) @ self.embeddings.T  # (B, N)

    def search(self, emb: np.ndarray, k: int = 1) -> list[list[tuple[int, float]]]:
        """Top-``k`` entries per query, best first: ``[[(index, cosine), ...], ...]``."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if len(self) == 0:
            raise ValueError("the phrase bank is empty")
        sims = self.similarities(emb)  # (B, N)
        k = min(k, sims.shape[1])
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (B, k) unordered
        top_sims = np.take_along_axis(sims, top, axis=1)
        # sort by similarity (desc), ties by index so results are deterministic
        order = np.lexsort((top, -top_sims), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        top_sims = np.take_along_axis(top_sims, order, axis=1)
        return [
            [(int(i), float(s)) for i, s in zip(row_i, row_s, strict=True)]
            for row_i, row_s in zip(top, top_sims, strict=True)
        ]

    def nearest_texts(self, emb: np.ndarray) -> list[tuple[str, float]]:
        """The best text and its cosine for each query."""
        return [(self.texts[hits[0][0]], hits[0][1]) for hits in self.search(emb, k=1)]

    # -- persistence ----------------------------------------------------------------------
    def _sha256(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.embeddings).tobytes()).hexdigest()

    def save(self, directory: str | Path) -> Path:
        """Write ``embeddings.npy`` and ``phrase_bank.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / EMBEDDINGS_FILE, self.embeddings, allow_pickle=False)
        meta = {
            "format_version": FORMAT_VERSION,
            "count": len(self),
            "dim": self.dim,
            "embeddings_sha256": self._sha256(),
            "texts": self.texts,
        }
        (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> PhraseBank:
        """Read a bank written by :meth:`save`; raises :class:`PhraseBankIntegrityError`
        when its files disagree."""
        directory = Path(directory)
        meta_path, emb_path = directory / META_FILE, directory / EMBEDDINGS_FILE
        for path in (meta_path, emb_path):
            if not path.is_file():
                raise FileNotFoundError(f"phrase bank file missing: {path}")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        embeddings = np.ascontiguousarray(np.load(emb_path, allow_pickle=False), dtype=np.float32)
        if embeddings.shape != (meta["count"], meta["dim"]) or len(meta["texts"]) != meta["count"]:
            raise PhraseBankIntegrityError(
                f"{directory}: expected {meta['count']} texts and {meta['count']} x {meta['dim']} "
                f"embeddings, found {len(meta['texts'])} and {embeddings.shape}"
            )
        if hashlib.sha256(embeddings.tobytes()).hexdigest() != meta["embeddings_sha256"]:
            raise PhraseBankIntegrityError(f"{directory}: embeddings.npy does not match its sha256")
        bank = cls(meta["texts"], embeddings)
        bank.embeddings = embeddings  # already unit rows: keep the saved bits exactly
        return bank
