"""The root command: ``--version``, and dependencies' noise kept off the terminal."""

from __future__ import annotations

import logging
import warnings

from typer.testing import CliRunner

import celltext
from celltext.cli import app
from celltext.cli.common import setup_logging


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"celltext {celltext.__version__}\n"


def test_absl_info_and_reduce_op_warning_are_silenced():
    setup_logging()
    assert not logging.getLogger("absl").isEnabledFor(logging.INFO)
    assert logging.getLogger("celltext").isEnabledFor(logging.INFO)
    import torch.distributed as dist

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        setup_logging()  # re-installs the filters after simplefilter
        dist.reduce_op.SUM  # noqa: B018 (the access is what warns)
    assert not [w for w in caught if "reduce_op" in str(w.message)]


def test_spinner_only_on_a_terminal(monkeypatch):
    import io

    from rich.console import Console

    from celltext.cli import common

    for terminal in (False, True):
        buf = io.StringIO()
        console = Console(file=buf, force_terminal=terminal, width=80)
        monkeypatch.setattr(common, "err_console", console)
        with common.working("eval tiny on v1/val"):
            console.file.flush()
        assert ("eval tiny on v1/val" in buf.getvalue()) is terminal


def test_teacher_progress_bars_only_on_a_terminal(monkeypatch):
    import numpy as np

    from celltext.teacher import encoder

    seen = []

    class FakeModel:
        def encode(self, texts, **kw):
            seen.append(kw["show_progress_bar"])
            return np.zeros((len(texts), 4), np.float32)

    spec = type("Spec", (), {"id": "fake", "dim": 4})()
    teacher = encoder.Teacher(spec, FakeModel())
    for terminal in (False, True):
        monkeypatch.setattr(encoder, "stderr_is_terminal", lambda t=terminal: t)
        teacher.encode(["a"], progress=True, cache=False)
    assert seen == [False, True]
