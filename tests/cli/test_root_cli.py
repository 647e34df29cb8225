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
