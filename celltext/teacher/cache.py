"""On-disk embedding cache, keyed by teacher id and the sha256 of the text.

Layout: ``<root>/<teacher_id>/seg-*.npz``. Every ``put`` writes one new, immutable
*segment* (arrays ``keys`` (N,) of hex text hashes, ``vecs`` (N, D) float32, and
``digest``, the sha256 of both) to a temporary file and publishes it with ``os.replace``;
so two processes filling the cache at once never write the same file, and a reader never
sees half a segment. A segment whose digest does not match (bit rot, truncation, a stray
editor) is logged, deleted and its entries are recomputed by the caller: a corrupt file is
rebuilt, never silently used. When segments pile up they are merged under a file lock.
A segment that cannot be written (a full disk) leaves no temporary file; its vectors are
then kept in memory only, with a warning, since a cache must never fail the encoding.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
import zipfile
from pathlib import Path

import numpy as np
from filelock import FileLock

log = logging.getLogger(__name__)

_SEGMENT_GLOB = "seg-*.npz"
_MAX_SEGMENTS = 48


def text_key(text: str) -> str:
    """The cache key of one text: sha256 hex of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digest(keys: np.ndarray, vecs: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(keys).tobytes())
    h.update(np.ascontiguousarray(vecs, dtype=np.float32).tobytes())
    return h.hexdigest()


class CacheCorruptError(RuntimeError):
    """A cache segment failed its checksum (it is removed and rebuilt)."""


def _safe_dirname(teacher_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", teacher_id)


class EmbeddingCache:
    """Append-only store of L2-normalised embeddings for one teacher."""

    def __init__(self, root: str | Path, teacher_id: str, dim: int):
        self.dir = Path(root) / _safe_dirname(teacher_id)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.teacher_id = teacher_id
        self.dim = dim
        self._index: dict[str, np.ndarray] = {}
        self._loaded: set[str] = set()
        self.rebuilt_segments = 0

    # -- reading ---------------------------------------------------------------------------
    def _read_segment(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """Load and verify one segment; raise :class:`CacheCorruptError` if it is damaged."""
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, vecs, digest = data["keys"], data["vecs"], str(data["digest"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise CacheCorruptError(f"{path.name}: unreadable ({exc})") from exc
        if vecs.ndim != 2 or vecs.shape[1] != self.dim or len(keys) != len(vecs):
            raise CacheCorruptError(f"{path.name}: wrong shape {vecs.shape}")
        if _digest(keys, vecs) != digest:
            raise CacheCorruptError(f"{path.name}: checksum mismatch")
        return keys, vecs

    def refresh(self) -> None:
        """Pick up segments written since the last look (by this or another process)."""
        for path in sorted(self.dir.glob(_SEGMENT_GLOB)):
            if path.name in self._loaded:
                continue
            try:
                keys, vecs = self._read_segment(path)
            except FileNotFoundError:  # merged away by another process meanwhile
                continue
            except CacheCorruptError as exc:
                log.warning("embedding cache: corrupt segment removed, will rebuild: %s", exc)
                self.rebuilt_segments += 1
                path.unlink(missing_ok=True)
                continue
            for key, vec in zip(keys.tolist(), vecs, strict=True):
                self._index[key] = vec
            self._loaded.add(path.name)

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors for those ``keys`` that are present."""
        if any(k not in self._index for k in keys):
            self.refresh()
        return {k: self._index[k] for k in keys if k in self._index}

    def __len__(self) -> int:
        self.refresh()
        return len(self._index)

    # -- writing ---------------------------------------------------------------------------
    def _write_segment(self, keys: np.ndarray, vecs: np.ndarray) -> Path:
        name = f"seg-{os.getpid()}-{uuid.uuid4().hex}.npz"
        final = self.dir / name
        tmp = self.dir / f".tmp-{name}"
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=keys, vecs=vecs, digest=np.array(_digest(keys, vecs)))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)  # atomic publish: readers see all of it or nothing
        except BaseException:  # full disk, kill: never leave a temp file behind
            tmp.unlink(missing_ok=True)
            raise
        return final

    def put(self, keys: list[str], vecs: np.ndarray) -> None:
        """Store ``vecs`` (N, D) under ``keys`` (N) as one new segment; when the segment
        cannot be written (a full disk) they are kept in memory only, with a warning."""
        if not keys:
            return
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)  # (N, D)
        try:
            path = self._write_segment(np.array(keys, dtype="U64"), vecs)
        except OSError as exc:
            log.warning(
                "embedding cache %s: segment could not be written (%s); %d vectors kept in "
                "memory only", self.dir, exc, len(keys),
            )  # fmt: skip
            path = None
        for key, vec in zip(keys, vecs, strict=True):
            self._index[key] = vec
        if path is not None:
            self._loaded.add(path.name)
        if len(self._loaded) > _MAX_SEGMENTS:
            self.compact()

    def compact(self) -> None:
        """Merge all segments into one (under a lock, so only one process merges at a time)."""
        lock = FileLock(str(self.dir / ".compact.lock"), timeout=600)
        with lock:
            self.refresh()
            paths = [p for p in self.dir.glob(_SEGMENT_GLOB) if p.name in self._loaded]
            if len(paths) <= 1:
                return
            keys = list(self._index)
            vecs = np.stack([self._index[k] for k in keys]).astype(np.float32)  # (N, D)
            try:
                merged = self._write_segment(np.array(keys, dtype="U64"), vecs)
            except OSError as exc:  # the segments stay as they are; merging is optional
                log.warning("embedding cache %s: merge could not be written (%s)", self.dir, exc)
                return
            for p in paths:
                p.unlink(missing_ok=True)
            self._loaded = {merged.name}
