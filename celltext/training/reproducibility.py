"""Seeding and deterministic settings: same preset, seed and data -> same weights on CPU."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def configure_determinism(threads: int = 0) -> None:
    """Deterministic kernels where torch has them, and a fixed thread count.

    On CPU, results are bit-identical for the same thread count; reductions may be
    ordered differently with a different count, so the preset fixes it. On CUDA,
    ``CUBLAS_WORKSPACE_CONFIG`` is set and non-deterministic ops only warn.
    """
    if threads > 0:
        torch.set_num_threads(threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def stage_seed(seed: int, stage: str) -> int:
    """A per-stage seed, so a stage trained alone draws the same numbers as in a full run."""
    offsets = {"decoder": 1, "core": 2, "finetune": 3, "correct": 4}
    return seed * 1000 + offsets.get(stage, 0)
