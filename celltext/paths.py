"""Where celltext keeps its files.

The repository ships releases (``data/releases``) and the default model (``models/default``).
Everything generated at run time (embedding cache, MLflow store, runs) lives under the
*home* directory: ``$CELLTEXT_HOME`` or ``<repo>/.celltext``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RELEASE = "v2"
"""The release every command uses unless told otherwise (v1 stays for comparison)."""


def home_dir() -> Path:
    """Root of run-time state (cache, MLflow store, runs); created on demand."""
    path = Path(os.environ.get("CELLTEXT_HOME", REPO_ROOT / ".celltext"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Embedding cache and other derived artefacts."""
    path = home_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def releases_dir() -> Path:
    """Versioned dataset releases (``$CELLTEXT_RELEASES`` or ``<repo>/data/releases``)."""
    return Path(os.environ.get("CELLTEXT_RELEASES", REPO_ROOT / "data" / "releases"))


def presets_dir() -> Path:
    """Named training presets (YAML)."""
    return REPO_ROOT / "configs" / "presets"


def default_model_dir() -> Path:
    """The shipped default model."""
    return Path(os.environ.get("CELLTEXT_DEFAULT_MODEL", REPO_ROOT / "models" / "default"))
