"""Fixtures for the experiment tests: the synthetic release pairs of tests/release_fakes.py."""

from __future__ import annotations

import pytest
from release_fakes import make_pairs


@pytest.fixture
def qa_pairs():
    """The tiny deterministic QAPair set of :func:`release_fakes.make_pairs`."""
    return make_pairs()
