"""Fixtures for the evaluation tests: a synthetic release (hash teacher: tests/conftest.py)."""

from __future__ import annotations

import pytest
from release_fakes import FakeRelease, make_pairs


@pytest.fixture
def qa_pairs():
    """The tiny deterministic QAPair set of :func:`release_fakes.make_pairs`."""
    return make_pairs()


@pytest.fixture
def fake_release() -> FakeRelease:
    return FakeRelease()
