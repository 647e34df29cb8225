"""Safetensors files for state dicts: tied weights, dtype export, atomic file writes.

``safetensors`` refuses tensors that share memory (a decoder's tied input embedding and
output head). :func:`save_tensors` stores each shared tensor once and records the other
names as aliases in the file's header, and :func:`load_tensors` restores them, so that
``load_state_dict(strict=True)`` sees every key it expects. Nothing here uses pickle.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

_HEADER_KEY = "celltext"  # one key: safetensors writes header metadata in hash-map order


def write_bytes_atomic(path: str | Path, data: bytes, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (all or nothing).

    ``fsync=False`` skips flushing to disk: still atomic for a killed process (the page
    cache survives it), not for a power cut; checkpoints rely on their hashes for that.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def write_json_atomic(path: str | Path, obj: object, fsync: bool = True) -> Path:
    """Pretty JSON (sorted keys, so equal content gives equal bytes), written atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return write_bytes_atomic(path, text.encode(), fsync)


def _storage_key(t: torch.Tensor) -> tuple:
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))


def save_tensors(
    path: str | Path,
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    fsync: bool = True,
) -> Path:
    """Save a flat dict of tensors as safetensors (atomically).

    Tensors that are views of the same memory are written once; the other names become
    aliases in the header. The header is a single JSON entry with sorted keys, so equal
    tensors give byte-identical files. With ``dtype``, floating-point tensors are cast to it (e.g.
    ``torch.float16`` for a smaller export); integer tensors are kept as they are.
    """
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name in sorted(tensors):
        t = tensors[name].detach()
        key = _storage_key(t) if t.numel() else None
        if key is not None and key in seen:
            aliases[name] = seen[key]
            continue
        if key is not None:
            seen[key] = name
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        unique[name] = t.cpu().contiguous().clone()
    header = {"aliases": aliases, **(metadata or {})}
    packed = {_HEADER_KEY: json.dumps(header, sort_keys=True)}
    return write_bytes_atomic(path, st_save(unique, metadata=packed), fsync)


def load_tensors(
    path: str | Path, dtype: torch.dtype | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_tensors`: ``(tensors with aliases, header)``.

    With ``dtype``, floating-point tensors are cast to it (fp16 exports load as fp32).
    """
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        raw = dict(fh.metadata() or {})
        for name in fh.keys():
            t = fh.get_tensor(name)
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            tensors[name] = t
    header = json.loads(raw.pop(_HEADER_KEY, "{}"))
    header.update(raw)
    aliases = header.pop("aliases", {})
    for alias, target in aliases.items():
        tensors[alias] = tensors[target]
    return tensors, header
