"""sha256 of files, and the check of a folder's files against a table of their hashes.

One home for what a checkpoint (``metadata.json``) and an ONNX export (``manifest.json``)
both do when they are loaded: every listed file must exist and hash to its entry. Each
caller names its own error type, so a refusal still says which kind of artifact it was.

Standard library only: the torch-free onnxruntime path imports this, and so does the
registry, so it must import nothing of celltext (no import cycle).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

IntegrityError = Callable[[Path, str, str], Exception]
"""Builds the error to raise from ``(folder, file name, problem)``."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_file_hashes(folder: Path, files: Mapping[str, str], error: IntegrityError) -> None:
    """Raise ``error(folder, name, problem)`` for the first file, in name order, that is
    missing or whose sha256 is not ``files[name]``. The names must already be checked to
    stay inside ``folder``; what is inside differs between a checkpoint and an export."""
    for name, expected in sorted(files.items()):
        file = folder / name
        if not file.is_file():
            raise error(folder, name, "missing")
        if sha256_file(file) != expected:
            raise error(folder, name, "sha256 mismatch (file was modified or truncated)")
