"""Shared fixtures: fixed seeds, float32 default, few threads, an isolated celltext home."""

from __future__ import annotations

import os
import random

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
