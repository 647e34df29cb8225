"""A training run's directory: its record, its checkpoints, ``LATEST`` and resume.

Layout (``--out``, default ``<celltext home>/runs/<preset>-seed<seed>``)::

    run.json                 preset, stages, --register choice, status, MLflow run id
    tokenizer.json           trained once on the training texts     (training/prepare.py)
    data.safetensors/.json   embedded and tokenised data            (training/prepare.py)
    checkpoints/<i>-<stage>-<step>/   resumable checkpoints (with train_state/)
    checkpoints/LATEST       name of the newest complete checkpoint
    final/                   the result (export dtype, no train_state)

:class:`RunDir` is the only code that writes ``run.json`` and ``checkpoints/``: it starts or
reopens a run (a resume keeps the preset and options the run started with), writes a
checkpoint and moves ``LATEST`` to it, keeps the newest :data:`KEEP_CHECKPOINTS`, and finds
the newest checkpoint that verifies.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from celltext.paths import home_dir
from celltext.registry.checkpoint import (
    CheckpointIntegrityError,
    remove_stale_temporaries,
    save_checkpoint,
    verify_checkpoint,
)
from celltext.registry.tensorio import write_bytes_atomic, write_json_atomic
from celltext.training.args import Preset

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
LATEST = "LATEST"
KEEP_CHECKPOINTS = 2


class RunDirError(RuntimeError):
    """The run directory is in a state that does not allow the requested action."""


def default_run_dir(preset: Preset) -> Path:
    """``<celltext home>/runs/<preset>-seed<seed>``."""
    return home_dir() / "runs" / f"{preset.name}-seed{preset.seed}"


class RunDir:
    """One run directory (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.run_file = self.path / RUN_FILE
        self.checkpoints = self.path / "checkpoints"
        self.final = self.path / "final"
        self.record: dict[str, Any] = {}

    def exists(self) -> bool:
        """Whether a run was started here."""
        return self.run_file.is_file()

    # -- the run record -------------------------------------------------------------------
    def start(
        self,
        preset: Preset | None,
        *,
        resume: bool,
        overwrite: bool,
        stages: list[str] | None,
        register: bool | None = None,
    ) -> Preset:
        """Start a run of ``preset`` here, or reopen the one here (``resume``); its preset.

        A resume refuses a preset that differs from the stored one; a fresh start refuses a
        directory that holds a run unless ``overwrite``.
        """
        if resume and self.exists():
            self.record = json.loads(self.run_file.read_text())
            stored = Preset.from_dict(self.record["preset"])
            if preset is not None and preset.config_hash() != stored.config_hash():
                raise RunDirError(
                    f"{self.path} was started with a different preset ({stored.name}, hash "
                    f"{stored.config_hash()[:12]}); resume without changing it"
                )
            return stored
        if self.exists():
            if not overwrite:
                raise RunDirError(
                    f"{self.path} already holds a run; pass --resume to continue it "
                    "or --overwrite to start over"
                )
            shutil.rmtree(self.path)
        if preset is None:
            raise RunDirError(f"nothing to resume in {self.path} (no {RUN_FILE}); pass --preset")
        self.path.mkdir(parents=True, exist_ok=True)
        self.record = {
            "preset": preset.to_dict(),
            "preset_hash": preset.config_hash(),
            "stages": stages or preset.enabled_stages(),
            "register": register,  # the --register/--no-register choice; a resume keeps it
            "status": "running",
            "mlflow_run_id": None,
        }
        self.save_record()
        return preset

    def reopen(self) -> Preset:
        """Read the record another process started (non-main processes); its preset."""
        self.record = json.loads(self.run_file.read_text())
        return Preset.from_dict(self.record["preset"])

    def save_record(self, **changes: Any) -> None:
        """Update ``run.json`` with ``changes`` (atomically)."""
        self.record.update(changes)
        write_json_atomic(self.run_file, self.record)

    def forget(self) -> None:
        """Remove the record of a run that trained nothing, so a retry is not refused."""
        self.run_file.unlink(missing_ok=True)

    # -- checkpoints ----------------------------------------------------------------------
    def save(self, name: str, model, tokenizer, config, metadata, train_state) -> Path:
        """Write checkpoint ``name`` (resumable), point ``LATEST`` at it, prune older ones."""
        path = self.checkpoints / name
        save_checkpoint(
            path, model, tokenizer, config, metadata, train_state=train_state, durable=False
        )
        write_bytes_atomic(self.checkpoints / LATEST, name.encode())
        dirs = sorted(
            p for p in self.checkpoints.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        for old in dirs[:-KEEP_CHECKPOINTS]:
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return path

    def latest(self, clean: bool = True) -> Path | None:
        """The newest checkpoint that verifies (``LATEST`` first, then newest name first).

        ``clean`` removes what killed writers left behind (main process only).
        """
        if not self.checkpoints.is_dir():
            return None
        if clean:
            remove_stale_temporaries(self.checkpoints)
        candidates = sorted((p for p in self.checkpoints.iterdir() if p.is_dir()), reverse=True)
        pointer = self.checkpoints / LATEST
        if pointer.is_file():
            named = self.checkpoints / pointer.read_text().strip()
            candidates = [named] + [c for c in candidates if c != named]
        for path in candidates:
            try:
                verify_checkpoint(path, include_train_state=True)
                return path
            except CheckpointIntegrityError as exc:
                log.warning("skipping damaged checkpoint: %s", exc)
        return None
