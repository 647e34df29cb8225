"""Run the ``celltext`` CLI with the hash teacher and the synthetic release (for subprocess
tests: ``python tests/training/fake_cli.py train --preset tiny ...``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import training_fakes  # noqa: E402

import celltext.training.trainer as trainer  # noqa: E402

_teacher = training_fakes.HashTeacher(32)
trainer._load_teacher = lambda name: _teacher
trainer._load_release = lambda version: training_fakes.fake_release(version)

if __name__ == "__main__":
    from celltext.cli import app

    app(prog_name="celltext")
