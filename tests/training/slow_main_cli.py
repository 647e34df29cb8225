"""``fake_cli.py`` on a busy machine, made reproducible: the main process (rank 0) reaches
the run-directory check ``CELLTEXT_TEST_MAIN_DELAY`` seconds (default 3) after the others."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fake_cli  # noqa: E402, F401  (the hash teacher and the synthetic release)

import celltext.cli.train as train_cli  # noqa: E402

_check = train_cli.existing_run_check


def _late_on_the_main_process(*args, **kwargs):
    if os.environ.get("RANK", "0") == "0":
        time.sleep(float(os.environ.get("CELLTEXT_TEST_MAIN_DELAY", "3")))
    return _check(*args, **kwargs)


train_cli.existing_run_check = _late_on_the_main_process

if __name__ == "__main__":
    from celltext.cli import app

    app(prog_name="celltext")
