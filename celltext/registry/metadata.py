"""Provenance recorded in every checkpoint's ``metadata.json``: git, hardware, libraries.

Everything here is best effort and never raises: a checkpoint written outside a git
checkout simply records ``git: {"commit": null, ...}``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celltext.paths import REPO_ROOT

_LIBRARIES = (
    "celltext",
    "torch",
    "numpy",
    "safetensors",
    "tokenizers",
    "accelerate",
    "mlflow",
    "sentence-transformers",
    "transformers",
)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.lru_cache(maxsize=4)
def git_info(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """``{commit, branch, dirty}`` of the checkout the code runs from (``None`` outside git)."""
    commit = _git(["rev-parse", "HEAD"], repo)
    if not commit:
        return {"commit": None, "branch": None, "dirty": None}
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], repo)
    status = _git(["status", "--porcelain", "--untracked-files=no"], repo)
    return {
        "commit": commit,
        "branch": branch,
        "dirty": bool(status) if status is not None else None,
    }


def hardware_info() -> dict[str, Any]:
    """CPU, accelerator and thread settings of this machine."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "gpus": [],
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries a checkpoint depends on."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def utc_now() -> str:
    """Current UTC time, ISO 8601, second precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def provenance() -> dict[str, Any]:
    """Git, hardware and library information in one dict (the parts of metadata.json
    that describe where and with what a checkpoint was made)."""
    return {"git": git_info(), "hardware": hardware_info(), "libraries": library_versions()}
