"""Shared fixtures: fixed seeds, float32 default, few threads, an isolated celltext home,
and ``hash_teacher``, a fast deterministic stand-in for the teacher."""

from __future__ import annotations

import hashlib
import os
import random
import re

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _reset_state(tmp_path_factory, monkeypatch):
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(1)
    if "CELLTEXT_TEST_KEEP_HOME" not in os.environ:
        monkeypatch.setenv("CELLTEXT_HOME", str(tmp_path_factory.mktemp("celltext_home")))
    yield


class HashTeacher:
    """Bag-of-words hashing encoder with the Teacher interface (L2-normalised, float32).

    Texts with the same words get cosine 1; texts sharing no word get cosine ~0.
    """

    id = "hash-teacher"

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.calls = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            h = int(hashlib.sha256(word.encode()).hexdigest(), 16)
            v[h % self.dim] += 1.0 if (h >> 8) % 2 else -1.0
        n = np.linalg.norm(v)
        return v / n if n > 0 else v

    def encode(self, texts, batch_size=64, progress=False, cache=True):
        self.calls += 1
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vec(t) for t in texts]).astype(np.float32)


@pytest.fixture
def hash_teacher() -> HashTeacher:
    return HashTeacher()


# -- the real MiniLM teacher (loaded once), a tiny phrase bank and tiny checkpoints (one
# fitted to the bank's pairs, one with a lattice core): inference, export, serving, cli
@pytest.fixture(scope="session")
def teacher():
    from celltext.teacher import load_teacher

    return load_teacher("minilm")


@pytest.fixture(scope="session")
def bank(teacher):
    from serving_tiny import tiny_bank

    return tiny_bank(teacher)


@pytest.fixture(scope="session")
def fitted_ckpt(teacher, tmp_path_factory):
    """mlp core + ret decoder that answer the tiny pairs correctly."""
    from serving_tiny import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "fitted", teacher=teacher, steps=100)


@pytest.fixture(scope="session")
def lattice_ckpt(tmp_path_factory):
    """Untrained hybrid core (3x3x2 lattice) + hybrid decoder."""
    from serving_tiny import tiny_checkpoint

    return tiny_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "lattice", "hybrid_cct_mamba", "hybrid_cct_mamba"
    )


@pytest.fixture
def predictor(fitted_ckpt, teacher, bank):
    """A fresh predictor per test (tests patch its stages)."""
    from celltext.inference.factory import load_predictor

    return load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank)


@pytest.fixture
def retrieval(teacher, bank):
    from celltext.inference.factory import load_predictor

    return load_predictor("retrieval", teacher=teacher, bank=bank)
