"""Publishing an export atomically: a staged folder that replaces the old one by renames.

An export (:mod:`celltext.export.onnx`) or a variant of one (:mod:`.teacher_int8`, the int8
parity variant) is written into a fresh sibling folder, :func:`staged_dir`, that replaces
the target only when every file is written; :func:`write_manifest` seals it with the sha256
of every file (checked on load by :func:`celltext.inference.export_files.verify_export`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celltext.inference.export_files import MANIFEST, SELF_HASH, manifest_hash

log = logging.getLogger(__name__)

# every file an export (+ parity) holds
EXPORT_SUFFIXES = (".onnx", ".data", ".json", ".md", ".npz")


@contextlib.contextmanager
def staged_dir(out: str | Path) -> Iterator[Path]:
    """A fresh sibling folder of ``out`` to write into (same filesystem); when the block
    succeeds it replaces ``out`` by renames, on any failure it is removed and ``out`` stays
    as it was. Runs under a lock beside ``out``, which also clears temporary folders left by
    killed runs. An existing ``out`` must look like an export: a folder holding anything
    else is refused with ``ValueError`` rather than deleted."""
    from filelock import FileLock

    out = Path(out)
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.parent / f".{out.name}.lock")):
        for stale in out.parent.glob(f".tmp-{'?' * 8}-{out.name}"):  # killed runs' (locked)
            log.warning("removing %s, left by an interrupted export", stale)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = _temp_name(out)
        tmp.mkdir()
        try:
            yield tmp
            _replace_dir(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def check_replaceable(out: Path) -> None:
    """Raise ``ValueError`` unless ``out`` is absent, empty or holds only export files."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder for an ONNX export")
    if out.is_dir():
        foreign = [p.name for p in out.iterdir() if not _export_file(p)]
        if foreign:
            raise ValueError(
                f"refusing to replace {out}: it is not an ONNX export (it holds {foreign[0]}); "
                "choose a new or empty folder"
            )


def _temp_name(out: Path) -> Path:
    return out.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{out.name}")


def _export_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink() and path.name.endswith(EXPORT_SUFFIXES)


def _replace_dir(src: Path, dst: Path) -> None:
    """Put folder ``src`` at ``dst``: a rename, the old ``dst`` moved aside first (a folder
    cannot be renamed over a non-empty one) and deleted after."""
    if not dst.exists():
        src.rename(dst)
        return
    old = _temp_name(dst)
    dst.rename(old)
    src.rename(dst)
    shutil.rmtree(old, ignore_errors=True)


def write_manifest(out: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``manifest.json`` with the sha256 of every file in ``out`` and of itself
    (checked on load by :func:`celltext.inference.export_files.verify_export`); return it."""
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    full = {k: v for k, v in manifest.items() if k != SELF_HASH} | {"files": files}
    full[SELF_HASH] = manifest_hash(full)
    (out / MANIFEST).write_text(json.dumps(full, indent=2) + "\n")
    return full


__all__ = ["EXPORT_SUFFIXES", "check_replaceable", "staged_dir", "write_manifest"]
