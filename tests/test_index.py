"""The one retrieval index: top-k against brute force, ties, persistence, bad inputs."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys

import numpy as np
import pytest

from celltext.index import Match, RetrievalIndex, unit_rows
from celltext.paths import cache_dir

N, D = 20, 8
QUESTIONS = [f"question number {i} about topic {i % 3}" for i in range(N)]
ANSWERS = [f"answer number {i} about topic {i % 3}" for i in range(N)]


@pytest.fixture
def index() -> RetrievalIndex:
    rng = np.random.default_rng(0)
    q = unit_rows(rng.normal(size=(N, D)))
    a = unit_rows(rng.normal(size=(N, D)))
    return RetrievalIndex(
        QUESTIONS, ANSWERS, q, a, source="test", subjects=[str(i % 3) for i in range(N)]
    )


def test_unit_rows_keeps_zero_rows():
    out = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


@pytest.mark.parametrize("side", ["answer", "question"])
def test_search_matches_brute_force(index, side):
    rng = np.random.default_rng(1)
    queries = rng.normal(size=(5, D)).astype(np.float32) * 3  # any scale: cosines
    hits = index.search(queries, k=4, side=side)
    embs = index.answer_embs if side == "answer" else index.question_embs
    for q, row in zip(queries, hits, strict=True):
        sims = embs @ (q / np.linalg.norm(q))
        expect = np.argsort(-sims)[:4]
        assert [m.index for m in row] == expect.tolist()
        assert [m.text for m in row] == [ANSWERS[j] for j in expect]
        np.testing.assert_allclose([m.score for m in row], sims[expect], rtol=1e-5, atol=1e-6)
    assert len(index.search(queries, k=100)[0]) == N
    # a 1-D query is one query
    assert [m.index for m in index.search(queries[0], k=4, side=side)[0]] == [
        m.index for m in hits[0]
    ]


def test_by_question_and_by_answer_are_the_top_hit(index):
    own = index.by_question(index.question_embs[[3, 7]] * 5.0)
    assert [m.index for m in own] == [3, 7] and own[0].text == ANSWERS[3]
    assert own[0].score == pytest.approx(1.0, abs=1e-5)
    assert [m.index for m in index.by_answer(index.answer_embs[[11]])] == [11]
    assert index.by_answer(index.answer_embs[[11]]) == [index.search(index.answer_embs[11])[0][0]]


def test_ties_go_to_the_lower_index():
    emb = unit_rows(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]))
    idx = RetrievalIndex(["q0", "q1", "q2", "q3"], ["a0", "a1", "a2", "a3"], emb, emb)
    query = np.array([[1.0, 0.0]])
    assert [m.index for m in idx.search(query, k=3)[0]] == [0, 2, 3]
    assert [m.index for m in idx.search(query, k=4)[0]] == [0, 2, 3, 1]
    assert idx.by_question(query)[0] == Match("a0", 1.0, 0)
    rows, scores = idx.top_questions(query, k=2)
    assert rows.tolist() == [[0, 2]] and scores.tolist() == [[1.0, 1.0]]


def test_top_questions_can_exclude_rows(index):
    q = index.question_embs[[2]]
    rows, scores = index.top_questions(q, k=3)
    assert rows[0, 0] == 2 and scores.shape == (1, 3)
    assert np.all(np.diff(scores[0]) <= 0)
    hidden = np.zeros((1, N), dtype=bool)
    hidden[0, 2] = True
    rows, _ = index.top_questions(q, k=3, exclude=hidden)
    assert 2 not in rows[0].tolist()


def test_bad_inputs(index):
    with pytest.raises(ValueError, match="dimension 8"):
        index.search(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="dimension 8"):
        index.by_question(np.zeros((1, 10), dtype=np.float32))
    with pytest.raises(ValueError, match="k must"):
        index.search(np.zeros(D), k=0)
    with pytest.raises(ValueError, match="side must"):
        index.search(np.zeros(D), side="subject")
    with pytest.raises(ValueError, match="equal length"):
        RetrievalIndex(["q"], ["a"], np.zeros((2, D)), np.zeros((2, D)))
    with pytest.raises(ValueError, match="at least one pair"):
        RetrievalIndex([], [], np.zeros((0, D)), np.zeros((0, D)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        RetrievalIndex(["q"], ["a"], np.zeros((1, D)), np.zeros((1, D + 1)))
    with pytest.raises(ValueError, match="subjects"):
        RetrievalIndex(["q"], ["a"], np.zeros((1, D)), np.zeros((1, D)), subjects=[])


def test_save_load_roundtrip(index, tmp_path):
    path = index.save(tmp_path / "sub" / "index.npz")
    again = RetrievalIndex.load(path)
    assert (again.questions, again.answers) == (index.questions, index.answers)
    assert (again.subjects, again.source, len(again), again.dim) == (index.subjects, "test", N, D)
    np.testing.assert_array_equal(again.question_embs, index.question_embs)
    np.testing.assert_array_equal(again.answer_embs, index.answer_embs)
    assert not list(tmp_path.glob("sub/.tmp-*"))  # written atomically


def test_damaged_file_raises_a_clear_error(index, tmp_path):
    path = index.save(tmp_path / "index.npz")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the embeddings
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"index\.npz: (checksum mismatch|unreadable)"):
        RetrievalIndex.load(path)
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="unreadable retrieval index"):
        RetrievalIndex.load(path)
    with pytest.raises(FileNotFoundError):
        RetrievalIndex.load(tmp_path / "missing.npz")


def test_from_pairs_embeds_both_sides(hash_teacher):
    idx = RetrievalIndex.from_pairs(["What is RAM?"], ["RAM is memory."], hash_teacher, "s")
    np.testing.assert_array_equal(idx.question_embs, hash_teacher.encode(["What is RAM?"]))
    np.testing.assert_array_equal(idx.answer_embs, hash_teacher.encode(["RAM is memory."]))
    assert idx.source == "s" and idx.subjects is None


def test_lexical_finds_the_question_by_its_words(index):
    assert index.lexical(["question number 13 about topic 1"])[0].index == 13


def test_import_needs_neither_torch_nor_sklearn():
    code = (
        "import sys, celltext.index; "
        "print(sorted(m for m in ('torch', 'sklearn', 'celltext.models', 'celltext.inference',"
        " 'celltext.evaluation') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _no_space(fh, **arrays):
    """A writer that runs out of disk half-way (as on a full filesystem)."""
    fh.write(b"PK\x03\x04 partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_failed_save_removes_its_temp_file(index, tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", _no_space)
    with pytest.raises(OSError, match="No space left"):
        index.save(tmp_path / "index.npz")
    assert list(tmp_path.iterdir()) == []  # neither a temp file nor a partial index


def test_bank_is_kept_in_memory_when_its_cache_cannot_be_written(
    hash_teacher, tmp_path, monkeypatch, caplog
):
    """Issue item 7: a full disk must not drop the phrase bank (nor leave a temp file)."""
    from serving_tiny import PAIRS, tiny_release

    tiny_release(tmp_path / "releases", "v1")
    monkeypatch.setattr(np, "savez", _no_space)
    with caplog.at_level(logging.WARNING, logger="celltext.index"):
        bank = RetrievalIndex.for_release(hash_teacher, "v1", root=tmp_path / "releases")
    assert bank is not None and bank.answers == [a for _, a in PAIRS]
    assert "could not be written" in caplog.text and "in memory" in caplog.text
    folder = cache_dir() / "phrase_bank"
    assert not list(folder.glob("*")), "no cache file and no temp file left behind"
