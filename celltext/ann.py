"""Approximate nearest neighbours for the phrase bank: faiss HNSW, candidates rescored exactly.

A phrase-bank look-up scans every row: 45,481 x 384 float32 (70 MB) per side of release v2,
about 2.7 ms per query on this machine, twice per answer (the nearest questions, the answer
nearest to the core's prediction). A graph index (HNSW: Malkov & Yashunin 2018, "Efficient
and robust approximate nearest neighbor search using Hierarchical Navigable Small World
graphs"; faiss's ``IndexHNSWSQ``, 8-bit scalar-quantised vectors, Johnson et al. 2019)
visits a few thousand rows instead of all of them.

The graph only proposes: :meth:`HnswSearch.top` asks it for ``max(2k, 40)`` candidates,
then scores those rows exactly against the bank's float32 embeddings and orders them by
score (ties to the lower row), so every score the caller sees is the exact cosine and a row
that the graph finds is ranked exactly as a full scan ranks it. What can differ from a full
scan is a row the graph misses: on 830 held-out and ``test_paraphrase`` questions of
release v2 the graph finds 99.3% of the scan's top 20 and its first row for 99.9%
(``benchmarks/ann_recall.py``).

The index of a bank is built once (about 10 s per side on one core, single-threaded so the
graph is the same on every machine) and stored beside the bank's cache file; a file that
does not load or does not match its bank is rebuilt with a warning. Banks smaller than
:data:`MIN_ROWS` are scanned (a scan is cheaper there), as is every search with an
``exclude`` mask (calibration hides rows per query, which a graph cannot).

Shapes: N rows, D dimension, B queries, k results, C candidates.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIN_ROWS = 10_000
"""Banks with fewer rows are scanned exactly."""
M = 32
"""Graph neighbours per node (faiss's ``M``)."""
EF_CONSTRUCTION = 80
EF_SEARCH = 128
MIN_CANDIDATES = 40
"""Candidates asked of the graph per query, at least (``2k`` when that is more)."""
SELF_CHECK_ROWS = 8
"""Rows looked up as queries after loading: each must find itself (a stale or foreign
index does not)."""


def available() -> bool:
    """Whether faiss is installed (it is a dependency; a broken install falls back to scans)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class HnswSearch:
    """The HNSW graph over one embedding matrix (N, D), with exact rescoring."""

    def __init__(self, embs: np.ndarray, index):
        self.embs, self.index = embs, index
        self.index.hnsw.efSearch = EF_SEARCH

    @classmethod
    def build(cls, embs: np.ndarray) -> HnswSearch:
        """Build the graph over ``embs`` (N, D) unit rows (single-threaded: deterministic)."""
        import faiss

        data = np.ascontiguousarray(embs, dtype=np.float32)
        index = faiss.IndexHNSWSQ(
            data.shape[1], faiss.ScalarQuantizer.QT_8bit, M, faiss.METRIC_INNER_PRODUCT
        )
        index.hnsw.efConstruction = EF_CONSTRUCTION
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            index.train(data)
            index.add(data)
        finally:
            faiss.omp_set_num_threads(threads)
        return cls(embs, index)

    @classmethod
    def load_or_build(cls, embs: np.ndarray, path: Path) -> HnswSearch:
        """The index stored at ``path`` if it loads and matches ``embs``; else build it and
        store it there (a failed write only costs the next process a rebuild)."""
        import faiss

        if path.exists():
            try:
                found = cls(embs, faiss.read_index(str(path)))
                found.check()
                return found
            except (RuntimeError, ValueError) as exc:  # faiss raises RuntimeError
                log.warning("approximate index %s unusable (%s); rebuilding it", path, exc)
        built = cls.build(embs)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
        try:
            faiss.write_index(built.index, str(tmp))
            os.replace(tmp, path)
        except (OSError, RuntimeError) as exc:
            tmp.unlink(missing_ok=True)
            log.warning("approximate index %s not stored (%s); kept in memory", path, exc)
        return built

    def check(self) -> None:
        """Raise ``ValueError`` unless the index holds this matrix: as many rows, and spread
        rows looked up as queries find themselves."""
        n = len(self.embs)
        if self.index.ntotal != n or self.index.d != self.embs.shape[1]:
            shape = (self.index.ntotal, self.index.d)
            raise ValueError(f"index of {shape}, bank of {self.embs.shape}")
        probe = np.linspace(0, n - 1, min(SELF_CHECK_ROWS, n)).astype(np.int64)
        _, scores = self.top(self.embs[probe], 1)
        if not np.allclose(scores[:, 0], np.sum(self.embs[probe] ** 2, axis=1), atol=1e-4):
            raise ValueError("rows do not find themselves: the index is of another bank")

    def top(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (B, k) and exact scores (B, k) of the best rows per unit query (B, D), best
        first, ties to the lower row."""
        k = min(k, len(self.embs))
        c = min(max(2 * k, MIN_CANDIDATES), len(self.embs))
        _, cand = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), c)  # (B, C)
        cand = np.where(cand < 0, cand.max(axis=1, keepdims=True), cand)  # -1: fewer found
        scores = np.einsum("bd,bcd->bc", queries, self.embs[cand])  # (B, C) exact
        order = np.lexsort((cand, -scores), axis=1)[:, :k]
        rows = np.take_along_axis(cand, order, 1)
        return rows, np.take_along_axis(scores, order, 1)


__all__ = ["MIN_ROWS", "HnswSearch", "available"]
