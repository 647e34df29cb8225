"""Shared fixtures for the training tests: the fakes and one uninterrupted tiny run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import training_fakes  # noqa: E402


@pytest.fixture()
def fakes(monkeypatch):
    """The hash teacher and the synthetic release, for in-process training."""
    return training_fakes.install(monkeypatch)


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """One uninterrupted tiny run, shared by every test that compares against it."""
    with pytest.MonkeyPatch.context() as mp:
        training_fakes.install(mp)
        return training_fakes.train_tiny(tmp_path_factory.mktemp("reference") / "run")
