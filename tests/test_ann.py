"""The phrase bank's HNSW search: agrees with a full scan, exact scores, a damaged or
foreign index file is rebuilt, small banks and masked searches stay full scans."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from celltext import ann
from celltext.ann import HnswSearch
from celltext.index import RetrievalIndex, unit_rows

N, D = 3000, 32


@pytest.fixture(scope="module")
def embs() -> np.ndarray:
    """Clustered unit rows, as sentence embeddings are (40 topics)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, D))
    return unit_rows(centres[rng.integers(0, 40, N)] + 0.4 * rng.normal(size=(N, D)))


@pytest.fixture(scope="module")
def search(embs) -> HnswSearch:
    return HnswSearch.build(embs)


def _queries(embs: np.ndarray, n: int = 100) -> np.ndarray:
    rng = np.random.default_rng(1)
    return unit_rows(embs[rng.integers(0, len(embs), n)] + 0.3 * rng.normal(size=(n, D)))


def _exact(embs, queries, k):
    scores = queries @ embs.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_graph_agrees_with_a_full_scan_and_scores_exactly(embs, search):
    q = _queries(embs)
    rows, scores = search.top(q, 20)
    exact = _exact(embs, q, 20)
    assert np.mean(rows[:, 0] == exact[:, 0]) >= 0.97
    recall = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(rows, exact, strict=True)])
    assert recall >= 0.95
    np.testing.assert_allclose(scores, np.einsum("bd,bkd->bk", q, embs[rows]), atol=1e-6)
    assert np.all(np.diff(scores, axis=1) <= 1e-7), "best first"


def test_index_is_stored_reused_and_rebuilt_when_damaged_or_foreign(embs, tmp_path, caplog):
    path = tmp_path / "bank.question.hnsw"
    first = HnswSearch.load_or_build(embs, path)
    assert path.is_file()
    q = _queries(embs, 10)
    again = HnswSearch.load_or_build(embs, path)  # loaded, not rebuilt
    assert np.array_equal(again.top(q, 5)[0], first.top(q, 5)[0])
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with caplog.at_level(logging.WARNING, logger="celltext.ann"):
        rebuilt = HnswSearch.load_or_build(embs, path)
    assert "unusable" in caplog.text
    assert np.array_equal(rebuilt.top(q, 5)[0], first.top(q, 5)[0])
    caplog.clear()
    other = unit_rows(np.random.default_rng(5).normal(size=(N, D)))  # same shape, other rows
    with caplog.at_level(logging.WARNING, logger="celltext.ann"):
        HnswSearch.load_or_build(other, path)
    assert "another bank" in caplog.text


def _bank(embs) -> RetrievalIndex:
    texts = [f"pair {i}" for i in range(len(embs))]
    answers = unit_rows(embs[::-1] + 0.1)
    return RetrievalIndex(texts, texts, embs, answers)


def test_bank_searches_through_the_graph_except_masked_searches(embs, tmp_path, monkeypatch):
    monkeypatch.setattr(ann, "MIN_ROWS", 1000)
    bank = _bank(embs)
    bank.approximate(tmp_path / "bank")
    assert bank.approximated and sorted(p.name for p in tmp_path.iterdir()) == [
        "bank.answer.hnsw", "bank.question.hnsw",
    ]  # fmt: skip
    q = _queries(embs)
    calls = []
    real = HnswSearch.top
    monkeypatch.setattr(HnswSearch, "top", lambda self, *a: calls.append(1) or real(self, *a))
    rows, _ = bank.top_questions(q, 20)
    assert calls and np.mean(rows[:, 0] == _exact(embs, q, 1)[:, 0]) >= 0.97
    near = bank.nearest_answers(q)
    assert np.mean(near == _exact(bank.answer_embs, q, 1)[:, 0]) >= 0.97
    calls.clear()
    exclude = np.zeros((len(q), N), dtype=bool)
    exclude[:, rows[:, 0]] = True  # hide every first hit: only a full scan can honour it
    masked, _ = bank.top_questions(q, 2, exclude=exclude)
    assert not calls and not np.isin(masked, rows[:, 0]).any()


def test_small_banks_are_scanned(embs, tmp_path):
    bank = _bank(embs[:500])
    bank.approximate(tmp_path / "bank")
    assert not bank.approximated and not list(tmp_path.iterdir())
