"""``accelerate launch`` without ``--multi_gpu`` is caught before it trains on one process."""

from __future__ import annotations

from typer.testing import CliRunner

from celltext.cli import app
from celltext.cli.train import single_process_launch_error

PLAIN_LAUNCHER = {"ACCELERATE_MIXED_PRECISION": "no", "MASTER_ADDR": "127.0.0.1",
                  "MASTER_PORT": "29500"}  # fmt: skip


def test_single_process_launch_is_detected():
    assert "--multi_gpu" in single_process_launch_error(PLAIN_LAUNCHER)
    assert single_process_launch_error({**PLAIN_LAUNCHER, "WORLD_SIZE": "2"}) is None
    assert single_process_launch_error({**PLAIN_LAUNCHER, "OMPI_COMM_WORLD_SIZE": "2"}) is None
    assert single_process_launch_error({"ACCELERATE_MIXED_PRECISION": "no"}) is None  # 1 process
    assert single_process_launch_error({}) is None


def test_train_refuses_a_single_process_launch(monkeypatch, tmp_path):
    for key, value in PLAIN_LAUNCHER.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    result = CliRunner().invoke(app, ["train", "--preset", "tiny", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--multi_gpu" in result.output
    assert not (tmp_path / "r").exists()


def test_only_the_main_process_reports_a_run_dir_error(monkeypatch, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    args = ["train", "--preset", "tiny", "--out", str(out), "--no-register"]
    monkeypatch.setenv("RANK", "1")
    worker = CliRunner().invoke(app, args)
    assert worker.exit_code == 1 and worker.output == ""
    monkeypatch.setenv("RANK", "0")
    main = CliRunner().invoke(app, args)
    assert main.exit_code == 1 and "already holds a run" in main.output
    assert main.output.count("\n") <= 2  # one message, no traceback
