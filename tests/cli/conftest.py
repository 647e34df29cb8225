"""Shared fixtures of the CLI tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """A tiny release v1 (the tiny pairs) under its own releases folder."""
    from serving_tiny import tiny_release

    root = tmp_path_factory.mktemp("releases")
    tiny_release(root)
    return root


@pytest.fixture
def tiny_release_env(releases, monkeypatch):
    """The phrase bank comes from the tiny release v1, not the full one (a long build);
    modules opt in with ``pytestmark = pytest.mark.usefixtures("tiny_release_env")``."""
    monkeypatch.setenv("CELLTEXT_RELEASES", str(releases))
