"""Checkpoints: one directory, safetensors + JSON, hashed, written atomically, verified on load.

Layout::

    <checkpoint>/
      model.safetensors   weights, keys ``core.*`` and ``decoder.*`` (fp32, or fp16 export)
      config.json         {"format_version", "system": SystemConfig, "preset": ..., ...}
      tokenizer.json      the CellTokenizer
      metadata.json       provenance, metrics, parameter counts, sha256 of every other file
      train_state/        (optional) optimizer, scheduler, RNG, step: see celltext.training.state

The directory is assembled under a temporary name next to the target and renamed into
place, so a reader (or a process killed half-way) never sees a partial checkpoint.
``metadata.json`` lists the sha256 of every other file and carries a hash of itself;
:func:`load_checkpoint` recomputes them all and raises :class:`CheckpointIntegrityError`
naming the first file that does not match.

Those hashes are self-attested, so a checkpoint from elsewhere is still untrusted input: a
``files`` entry must name a file inside the directory (no ``..``, no absolute path, no
symlink that leaves it), the JSON files are size-capped, and the config's sizes are checked
against sane bounds before any tensor is allocated (:mod:`celltext.registry.bounds`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from celltext.hashing import sha256_file, verify_file_hashes
from celltext.registry.bounds import MAX_JSON_BYTES, SizeError, check_system_bounds
from celltext.registry.metadata import provenance, utc_now
from celltext.registry.tensorio import load_tensors, save_tensors, write_json_atomic

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
METADATA_FILE = "metadata.json"
TRAIN_STATE_DIR = "train_state"
REQUIRED_FILES = (MODEL_FILE, CONFIG_FILE, TOKENIZER_FILE, METADATA_FILE)


class CheckpointIntegrityError(RuntimeError):
    """A checkpoint file is missing, truncated, tampered with or inconsistent."""

    def __init__(self, path: Path, file: str, problem: str):
        self.path = Path(path)
        self.file = file
        super().__init__(f"checkpoint {self.path}: {file}: {problem}")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model in eval mode plus everything that describes it."""

    model: Any  # CellTextModel
    tokenizer: Any  # CellTokenizer
    config: dict[str, Any]
    metadata: dict[str, Any]
    path: Path

    @property
    def metrics(self) -> dict[str, float]:
        """The metrics recorded at save time (namespaced keys, e.g. ``val/cosine``)."""
        return dict(self.metadata.get("metrics", {}))


# -- atomic directories ---------------------------------------------------------------------
@contextmanager
def atomic_directory(path: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` when the block succeeds.

    On error the temporary directory is removed and ``path`` is left untouched. With
    ``durable``, every file in it is flushed to disk before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        yield tmp
        if durable:
            for file in (p for p in tmp.rglob("*") if p.is_file()):
                _fsync_file(file)
        _fsync_dir(tmp)
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
            os.rename(path, old)  # a directory cannot be replaced in one step; keep the window tiny
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(parent: str | Path) -> int:
    """Delete ``.*.tmp-*`` / ``.*.old-*`` leftovers of killed writers under ``parent``."""
    count = 0
    parent = Path(parent)
    if not parent.is_dir():
        return 0
    for entry in parent.iterdir():
        if entry.name.startswith(".") and (".tmp-" in entry.name or ".old-" in entry.name):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            count += 1
    return count


# -- hashing --------------------------------------------------------------------------------
def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def _self_hash(metadata: dict[str, Any]) -> str:
    body = {k: v for k, v in metadata.items() if k != "metadata_sha256"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def _file_hashes(root: Path) -> dict[str, str]:
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel != METADATA_FILE:
            files[rel] = sha256_file(path)
    return files


# -- saving ---------------------------------------------------------------------------------
def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    tokenizer: Any,
    config: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    dtype: torch.dtype | None = None,
    train_state: Callable[[Path], None] | None = None,
    durable: bool = True,
) -> Path:
    """Write ``model`` (a CellTextModel) and its tokenizer as a checkpoint directory.

    ``config`` is stored in ``config.json`` next to the system config (e.g. the training
    preset); ``metadata`` (metrics, dataset, training time, ...) is merged into
    ``metadata.json`` together with provenance, parameter counts and file hashes.
    ``dtype=torch.float16`` exports half-precision weights (loading casts back to fp32).
    ``train_state`` is called with ``<tmp>/train_state`` to add resumable training state.
    ``durable=False`` skips fsync (periodic checkpoints: a power cut can at worst leave
    a checkpoint whose hashes fail, and resuming then falls back to the previous one).
    """
    path = Path(path)
    system_cfg = model.resolved_config() if hasattr(model, "resolved_config") else None
    full_config = {
        "format_version": FORMAT_VERSION,
        "system": system_cfg.to_dict() if system_cfg is not None else None,
        **(config or {}),
    }
    weights_dtype = str(dtype or torch.float32).replace("torch.", "")
    with atomic_directory(path, durable) as tmp:
        save_tensors(
            tmp / MODEL_FILE,
            model.state_dict(),
            metadata={"format_version": FORMAT_VERSION},
            dtype=dtype,
            fsync=False,
        )
        write_json_atomic(tmp / CONFIG_FILE, full_config, fsync=False)
        (tmp / TOKENIZER_FILE).write_text(tokenizer.to_str())
        if train_state is not None:
            (tmp / TRAIN_STATE_DIR).mkdir()
            train_state(tmp / TRAIN_STATE_DIR)
        meta = _build_metadata(model, system_cfg, metadata or {}, weights_dtype)
        meta["files"] = _file_hashes(tmp)
        meta["weights_sha256"] = meta["files"][MODEL_FILE]
        meta["metadata_sha256"] = _self_hash(meta)
        write_json_atomic(tmp / METADATA_FILE, meta, fsync=False)
    return path


def _build_metadata(
    model: torch.nn.Module, system_cfg: Any, extra: dict[str, Any], weights_dtype: str
) -> dict[str, Any]:
    counts = model.parameter_counts() if hasattr(model, "parameter_counts") else {}
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "architecture": {
            "system": "celltext_system_v1",
            "core": getattr(model, "core_name", None),
            "decoder": getattr(model, "decoder_name", None),
        },
        "config_hash": system_cfg.config_hash() if system_cfg is not None else None,
        "teacher": {"id": getattr(model, "teacher_id", None), "dim": getattr(model, "dim", None)},
        "parameters": counts,
        "weights_dtype": weights_dtype,
        "created": utc_now(),
        **provenance(),
    }
    meta.update(extra)
    return meta


# -- verifying and loading ------------------------------------------------------------------
def read_metadata(path: str | Path) -> dict[str, Any]:
    """``metadata.json`` of a checkpoint, checked against its own hash."""
    path = Path(path)
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        raise CheckpointIntegrityError(path, METADATA_FILE, "missing (not a checkpoint?)")
    try:
        meta = json.loads(_read_small(path, METADATA_FILE))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointIntegrityError(path, METADATA_FILE, f"unreadable ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("metadata_sha256") != _self_hash(meta):
        raise CheckpointIntegrityError(path, METADATA_FILE, "sha256 mismatch (file was modified)")
    return meta


def _read_small(path: Path, rel: str) -> str:
    """A JSON file of the checkpoint, refused past :data:`MAX_JSON_BYTES`."""
    file = path / rel
    size = file.stat().st_size
    if size > MAX_JSON_BYTES:
        raise CheckpointIntegrityError(
            path, rel, f"{size} bytes, over the limit of {MAX_JSON_BYTES} for a JSON file"
        )
    return file.read_text()


def _check_inside(path: Path, rel: Any) -> None:
    """Refuse a ``files`` entry that is not a relative path to a file inside ``path``."""
    if not isinstance(rel, str) or not rel or "\\" in rel:
        raise CheckpointIntegrityError(path, str(rel), "refused: not a relative file name")
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts:
        raise CheckpointIntegrityError(path, rel, "refused: outside the checkpoint directory")
    root = path.resolve()
    if not (path / rel).resolve().is_relative_to(root):
        raise CheckpointIntegrityError(
            path, rel, "refused: a symlink that leaves the checkpoint directory"
        )


def verify_checkpoint(path: str | Path, include_train_state: bool = True) -> dict[str, Any]:
    """Check every file against the hashes in ``metadata.json``; return the metadata."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointIntegrityError(path, ".", "no such checkpoint directory")
    meta = read_metadata(path)
    files: dict[str, str] = meta.get("files", {})
    if not isinstance(files, dict):
        raise CheckpointIntegrityError(path, METADATA_FILE, "'files' is not a table of hashes")
    for rel in files:
        _check_inside(path, rel)
    for required in REQUIRED_FILES:
        if required != METADATA_FILE and required not in files:
            raise CheckpointIntegrityError(path, required, "not listed in metadata.json")
    if not include_train_state:
        files = {rel: h for rel, h in files.items() if not rel.startswith(TRAIN_STATE_DIR + "/")}
    verify_file_hashes(path, files, CheckpointIntegrityError)
    return meta


def read_config(path: str | Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint (not verified; see :func:`verify_checkpoint`)."""
    return json.loads(_read_small(Path(path), CONFIG_FILE))


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint as float32 tensors (aliases of tied weights restored)."""
    tensors, _ = load_tensors(Path(path) / MODEL_FILE, dtype=torch.float32)
    return tensors


def load_checkpoint(
    path: str | Path, verify: bool = True, include_train_state: bool = False
) -> Checkpoint:
    """Load a checkpoint directory: verify hashes, rebuild the model, load weights strictly.

    The model comes back in eval mode, in float32 (fp16 exports are cast back).
    """
    from celltext.models.system import CellTextModel, SystemConfig
    from celltext.tokenizer import CellTokenizer

    path = Path(path)
    meta = verify_checkpoint(path, include_train_state) if verify else read_metadata(path)
    try:
        config = read_config(path)
        system_cfg = SystemConfig.from_dict(config["system"])
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointIntegrityError(path, CONFIG_FILE, f"invalid ({exc})") from exc
    try:
        check_system_bounds(config["system"], system_cfg)
    except SizeError as exc:
        raise CheckpointIntegrityError(path, CONFIG_FILE, f"refused: {exc}") from exc
    model = CellTextModel(system_cfg)
    try:
        state = load_state_dict_file(path)
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointIntegrityError(path, MODEL_FILE, f"unreadable ({exc})") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointIntegrityError(path, MODEL_FILE, f"does not match config: {exc}") from exc
    model.eval()
    try:
        tokenizer = CellTokenizer.from_str((path / TOKENIZER_FILE).read_text())
    except Exception as exc:  # tokenizers raises a bare Exception ("Model missing", ...)
        problem = " ".join(str(exc).split())[:200]
        raise CheckpointIntegrityError(
            path, TOKENIZER_FILE, f"not a valid tokenizer ({type(exc).__name__}: {problem})"
        ) from exc
    return Checkpoint(model=model, tokenizer=tokenizer, config=config, metadata=meta, path=path)


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` looks like a checkpoint directory (has ``metadata.json``)."""
    return (Path(path) / METADATA_FILE).is_file()
