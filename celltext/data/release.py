"""Versioned dataset releases: ``data/releases/<version>/`` with a verified manifest.

Layout::

    manifest.json              version, created, generator config + hash, sources, files
    train.jsonl.gz ...         one gzip JSONL file per split (records of QAPair)
    extra_texts.jsonl.gz       {"text": ...} extra clean sentences (decoder pre-training)
    annotations.jsonl.gz       {"id", "complexity", "coherence"} per pair

Every file's sha256 is in the manifest; :func:`load_release` recomputes them and raises
:class:`ReleaseIntegrityError` naming the file when one does not match, so a tampered
or truncated file is refused, never used. gzip members are written with ``mtime=0`` so
the same pairs always give the same bytes and hashes.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from celltext.data.schema import DOMAINS, SPLITS, QAPair
from celltext.hashing import sha256_file
from celltext.paths import DEFAULT_RELEASE, releases_dir

MANIFEST = "manifest.json"
EXTRA_TEXTS = "extra_texts.jsonl.gz"
ANNOTATIONS = "annotations.jsonl.gz"
FORMAT_VERSION = 1


class ReleaseIntegrityError(RuntimeError, ValueError):
    """A release file is missing, unreadable, or its content does not match the manifest.

    Also a ValueError, so that every command that reports bad input cleanly reports this.
    The message names the file (and the line, for a bad record)."""


def _write_jsonl_gz(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records deterministically (gzip mtime 0); returns the number of lines."""
    buf = io.BytesIO()
    n = 0
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        for rec in records:
            gz.write((json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n").encode())
            n += 1
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return n


def _read_jsonl_gz(path: Path, parse: Callable[[dict], Any] | None = None) -> list[Any]:
    """The records of a gzip JSONL file (through ``parse``); a bad file or line is a
    :class:`ReleaseIntegrityError` naming it."""
    out: list[Any] = []
    lineno = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    out.append(parse(record) if parse is not None else record)
                except json.JSONDecodeError as exc:
                    raise ReleaseIntegrityError(
                        f"{path}:{lineno}: not valid JSON "
                        f"({exc.msg.removesuffix(' at')} at column {exc.colno})"
                    ) from exc
                except (KeyError, TypeError, ValueError) as exc:
                    raise ReleaseIntegrityError(
                        f"{path}:{lineno}: not a valid record ({type(exc).__name__}: {exc})"
                    ) from exc
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:  # BadGzipFile is OSError
        where = f"{path}:{lineno + 1}" if lineno else str(path)
        raise ReleaseIntegrityError(f"{where}: not a readable gzip JSONL file ({exc})") from exc
    return out


def dataset_digest(files: dict[str, dict[str, Any]]) -> str:
    """The release's sha256: over the sorted ``name:sha256`` lines of its files."""
    lines = "".join(f"{name}:{files[name]['sha256']}\n" for name in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def write_release(
    pairs: Iterable[QAPair],
    out_dir: str | Path,
    version: str,
    *,
    extra_texts: Iterable[str] | None = None,
    annotations: Iterable[dict[str, Any]] | None = None,
    generator: dict[str, Any] | None = None,
    sources: list[dict[str, Any]] | None = None,
    report: dict[str, Any] | None = None,
    created: str | None = None,
) -> Path:
    """Write a release (one gzip JSONL per split + manifest.json); returns its directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = list(pairs)
    by_split: dict[str, list[QAPair]] = {s: [] for s in SPLITS}
    for pair in pairs:
        if pair.split not in by_split:
            raise ValueError(f"pair {pair.id}: unknown split {pair.split!r}")
        if pair.domain not in DOMAINS:
            raise ValueError(f"pair {pair.id}: unknown domain {pair.domain!r}")
        by_split[pair.split].append(pair)
    files: dict[str, dict[str, Any]] = {}
    for split, items in by_split.items():
        name = f"{split}.jsonl.gz"
        n = _write_jsonl_gz(out / name, (p.to_dict() for p in items))
        files[name] = {"sha256": sha256_file(out / name), "count": n, "kind": "split"}
    if extra_texts is not None:
        n = _write_jsonl_gz(out / EXTRA_TEXTS, ({"text": t} for t in extra_texts))
        files[EXTRA_TEXTS] = {"sha256": sha256_file(out / EXTRA_TEXTS), "count": n}
        files[EXTRA_TEXTS]["kind"] = "extra_texts"
    if annotations is not None:
        n = _write_jsonl_gz(out / ANNOTATIONS, annotations)
        files[ANNOTATIONS] = {"sha256": sha256_file(out / ANNOTATIONS), "count": n}
        files[ANNOTATIONS]["kind"] = "annotations"
    for name in files:
        files[name]["bytes"] = (out / name).stat().st_size
    manifest = {
        "format_version": FORMAT_VERSION,
        "version": version,
        "created": created or _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "sha256": dataset_digest(files),
        "generator": generator or {"name": "celltext.data.release.write_release"},
        "sources": sources or [],
        "files": files,
        **count_pairs(pairs),
        "build_report": report or {},
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, out / MANIFEST)
    return out


def count_pairs(pairs: list[QAPair]) -> dict[str, Any]:
    """total, distinct subjects, per split / domain / question type / source."""
    return {
        "total": len(pairs),
        "subjects": len({p.subject.lower() for p in pairs}),
        "per_split": {s: sum(p.split == s for p in pairs) for s in SPLITS},
        "per_domain": {d: sum(p.domain == d for p in pairs) for d in DOMAINS},
        "per_qtype": dict(sorted(Counter(p.qtype for p in pairs).items())),
        "per_source": dict(sorted(Counter(p.source for p in pairs).items())),
    }


class Release:
    """A verified release on disk. Pairs are read lazily, per split."""

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = path
        self.manifest = manifest
        self.version: str = manifest["version"]
        self.sha256: str = manifest["sha256"]
        self._pairs: dict[str, list[QAPair]] = {}

    def pairs(self, split: str | None = None) -> list[QAPair]:
        """The pairs of one split (or of all splits, in SPLITS order, when None)."""
        if split is None:
            return [p for s in SPLITS for p in self.pairs(s)]
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {list(SPLITS)}")
        if split not in self._pairs:
            path = self.path / f"{split}.jsonl.gz"
            self._pairs[split] = _read_jsonl_gz(path, QAPair.from_dict)
        return self._pairs[split]

    def extra_texts(self) -> list[str]:
        """Additional clean sentences (empty if the release has none)."""
        path = self.path / EXTRA_TEXTS
        return [r["text"] for r in _read_jsonl_gz(path)] if path.exists() else []

    def annotations(self) -> dict[str, dict[str, Any]]:
        """Per-pair quality annotations by pair id (empty if the release has none)."""
        path = self.path / ANNOTATIONS
        return {r["id"]: r for r in _read_jsonl_gz(path)} if path.exists() else {}

    def __repr__(self) -> str:
        return f"Release(version={self.version!r}, total={self.manifest.get('total')})"


def verify_release(path: Path) -> dict[str, Any]:
    """Check every file against the manifest; return the manifest or raise."""
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise ReleaseIntegrityError(f"{manifest_path}: no manifest; not a release directory")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ReleaseIntegrityError(f"{manifest_path}: unreadable manifest ({exc})") from exc
    for name, meta in sorted(files.items()):
        file = path / name
        if not file.exists():
            raise ReleaseIntegrityError(f"{file}: listed in the manifest but missing")
        actual = sha256_file(file)
        if actual != meta["sha256"]:
            raise ReleaseIntegrityError(
                f"{file}: sha256 mismatch (manifest {meta['sha256'][:12]}..., file "
                f"{actual[:12]}...); the file was modified or corrupted and will not be used. "
                "Restore it (git checkout) or rebuild with `celltext data build`."
            )
    if dataset_digest(files) != manifest.get("sha256"):
        raise ReleaseIntegrityError(f"{manifest_path}: release sha256 does not match its files")
    return manifest


def release_path(version: str = DEFAULT_RELEASE, root: str | Path | None = None) -> Path:
    """Directory of a release version (``root`` defaults to ``data/releases``)."""
    return Path(root) / version if root is not None else releases_dir() / version


def load_release(version: str = DEFAULT_RELEASE, root: str | Path | None = None) -> Release:
    """Load and verify a release; raises :class:`ReleaseIntegrityError` on any mismatch.

    ``version`` may also be a path to a release directory.
    """
    candidate = Path(version)
    path = candidate if (candidate / MANIFEST).exists() else release_path(version, root)
    if not path.exists():
        raise FileNotFoundError(f"no release {version!r} at {path}")
    return Release(path, verify_release(path))
