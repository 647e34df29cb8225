"""Under a launcher, a process other than the main one leaves an error to the main process,
and reports it itself only when the main process has not failed in time."""

from __future__ import annotations

import time

from typer.testing import CliRunner

import celltext.cli.launch as launch
from celltext.cli import app


def _existing_run(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    return ["train", "--preset", "tiny", "--out", str(out), "--no-register"]


def test_a_worker_reports_its_own_error_when_the_main_process_does_not_fail(monkeypatch, tmp_path):
    monkeypatch.setattr(launch, "MAIN_REPORT_WAIT_S", 0.5)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    start = time.monotonic()
    result = CliRunner().invoke(app, _existing_run(tmp_path))
    assert time.monotonic() - start >= 0.5  # it gave the main process time to report
    assert result.exit_code == 1
    assert "error (process 1):" in result.output and "already holds a run" in result.output


def test_without_a_launcher_a_worker_exits_at_once(monkeypatch, tmp_path):
    monkeypatch.setattr(launch, "MAIN_REPORT_WAIT_S", 30.0)
    for key in launch.LAUNCHER_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RANK", "1")
    result = CliRunner().invoke(app, _existing_run(tmp_path))
    assert result.exit_code == 1 and result.output == ""
