"""Real processes: ``celltext train`` killed with SIGKILL resumes to the same weights, a
2-process CPU run (``accelerate launch``, gloo) completes, and a refused one reports once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import training_fakes
from typer.testing import CliRunner

from celltext.registry.checkpoint import read_metadata, verify_checkpoint

FAKE_CLI = Path(__file__).with_name("fake_cli.py")
SLOW_MAIN_CLI = Path(__file__).with_name("slow_main_cli.py")
VENV_BIN = Path(sys.executable).parent


def _train_args(out: Path, cli: Path = FAKE_CLI) -> list[str]:
    """The fake CLI training ``tiny`` into ``out``, quietly, with JSON output."""
    return [str(cli), "train", "--preset", "tiny", "--out", str(out), "--no-register",
            "--no-progress", "--json"]  # fmt: skip


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CELLTEXT_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }


def test_sigkill_then_resume_gives_identical_weights(tmp_path, reference, monkeypatch):
    out = tmp_path / "run"
    cmd = [sys.executable, *_train_args(out)]
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=_env(tmp_path))
        deadline = time.monotonic() + 120
        latest = out / "checkpoints" / "LATEST"
        while proc.poll() is None and not latest.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()[-2000:]
    assert latest.exists() and not (out / "final").exists(), "the run was not interrupted"

    training_fakes.install(monkeypatch)
    from celltext.cli import app

    result = CliRunner().invoke(
        app, ["train", "--resume", "--out", str(out), "--no-register", "--no-progress", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["resumed_from"] is not None
    assert summary["weights_sha256"] == reference.weights_sha256


def _launcher(name: str, port: int) -> tuple[list[str], list[str]]:
    """The documented 2-process CPU commands (docs/TRAINING_GUIDE.md): what goes before
    and after the training command."""
    if name == "celltext":
        return [sys.executable], ["--num-processes", "2"]
    if name == "torchrun":
        torchrun = [str(VENV_BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(port)]
        return torchrun, []
    return [
        str(VENV_BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(port),
    ], []  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["accelerate", "torchrun", "celltext"])
def test_two_process_cpu_run(tmp_path, launcher):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    before, after = _launcher(launcher, port)
    cmd = [*before, *_train_args(out), "--set", "stages.finetune.enabled=false", *after]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # exactly one document: only rank 0 reports
    meta = verify_checkpoint(summary["checkpoint"])
    assert meta["training"]["world_size"] == 2
    assert read_metadata(summary["checkpoint"])["metrics"]["val/cosine"] > 0
    # the same command again: one clear line from the main process, the run left alone
    again = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert again.returncode != 0, again.stderr[-3000:]
    error = json.loads(again.stdout)  # exactly one document: only rank 0 reports
    assert "already holds a run; pass --resume" in error["error"]
    assert "[rank1]" not in again.stderr  # no process waits for the main one and crashes
    if launcher == "celltext":  # no launcher traceback either: the one line, nothing else
        assert again.stderr.strip().startswith("error:") and "Traceback" not in again.stderr
    assert verify_checkpoint(summary["checkpoint"])["weights_sha256"] == meta["weights_sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["accelerate", "torchrun"])
def test_a_late_main_process_still_reports_the_refusal(tmp_path, launcher):
    """Every process refuses an existing run, the main one last (as on a busy machine):
    the launcher must not stop it before it has printed its one-line error. (``celltext
    --num-processes`` refuses before it starts any process.)"""
    from celltext.training.rundir import RUN_FILE

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    out.mkdir()
    (out / RUN_FILE).write_text("{}")
    before, after = _launcher(launcher, port)
    cmd = [*before, *_train_args(out, cli=SLOW_MAIN_CLI), *after]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), f"the main process printed nothing: {proc.stderr[-3000:]}"
    error = json.loads(proc.stdout)  # exactly one document: only rank 0 reports
    assert "already holds a run; pass --resume" in error["error"]
    # the worker never reported the error itself ("error (process 1): ..."); a bare
    # "process 1" could be the launcher naming a PID such as 14038
    assert "[rank1]" not in proc.stderr and "error (process 1)" not in proc.stderr
