"""A resumed run keeps the options it started with (issue 14, item 3): ``--no-register``."""

from __future__ import annotations

import json

import pytest
from training_fakes import train_tiny

from celltext.training.trainer import train


class _Crash(Exception):
    pass


def _crash_after_first_checkpoint(monkeypatch) -> None:
    import celltext.training.trainer as trainer_mod

    original = trainer_mod.Trainer.save_checkpoint

    def crashing_saver(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise _Crash()

    monkeypatch.setattr(trainer_mod.Trainer, "save_checkpoint", crashing_saver)


def test_resume_keeps_no_register(fakes, tmp_path, monkeypatch):
    import celltext.registry.tracking as tracking

    out = tmp_path / "run"
    with monkeypatch.context() as mp:
        _crash_after_first_checkpoint(mp)
        with pytest.raises(_Crash):
            train_tiny(out)  # register=False, as `celltext train --no-register`
    assert json.loads((out / "run.json").read_text())["register"] is False

    def no_tracking(*args, **kwargs):
        raise AssertionError("a --no-register run must not log to MLflow nor register")

    monkeypatch.setattr(tracking, "MlflowTracker", no_tracking)
    # `celltext train --resume --out RUN` passes register=None: "as the run started"
    resumed = train(None, out, resume=True, register=None, progress=False)
    assert resumed.resumed_from is not None and resumed.registered is None
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
