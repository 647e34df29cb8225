"""Run the ``celltext`` CLI with the hash teacher and the synthetic release (for subprocess
tests: ``python tests/training/fake_cli.py train --preset tiny ...``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import training_fakes  # noqa: E402

import celltext.data.release  # noqa: E402
import celltext.teacher  # noqa: E402

_teacher = training_fakes.HashTeacher(32)
celltext.teacher.load_teacher = lambda name, **kw: _teacher
celltext.data.release.load_release = lambda version, **kw: training_fakes.fake_release(version)

if __name__ == "__main__":
    from celltext.cli import app

    app(prog_name="celltext")
