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


def _record_launches(monkeypatch) -> list[tuple[int, list[str]]]:
    import celltext.cli.launch as launch

    calls: list[tuple[int, list[str]]] = []
    monkeypatch.setattr(launch, "launch", lambda n, args: calls.append((n, args)) or 0)
    for key in launch.LAUNCHER_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    return calls


def test_num_processes_runs_the_same_command_in_each_process(monkeypatch, tmp_path):
    calls = _record_launches(monkeypatch)
    out = str(tmp_path / "run")
    no_finetune = "stages.finetune.enabled=false"
    args = ["train", "--preset", "tiny", "--out", out, "--no-register", "--set", no_finetune,
            "--num-processes", "2", "--seed", "3"]  # fmt: skip
    result = CliRunner().invoke(app, ["-v", *args, "--json"])
    assert result.exit_code == 0, result.output
    # the options in their declared order, without --num-processes
    assert calls == [(2, ["--verbose", "train", "--preset", "tiny", "--seed", "3", "--out", out,
                          "--no-register", "--set", no_finetune, "--json"])]  # fmt: skip


def test_num_processes_reports_an_existing_run_once_before_starting_any(monkeypatch, tmp_path):
    calls = _record_launches(monkeypatch)
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    args = ["train", "--preset", "tiny", "--out", str(out), "--num-processes", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and calls == []
    assert result.output.count("already holds a run; pass --resume") == 1
    assert "Traceback" not in result.output


def test_num_processes_is_refused_under_a_launcher(monkeypatch, tmp_path):
    calls = _record_launches(monkeypatch)
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(app, ["train", "--preset", "tiny", "--out", str(tmp_path / "r"),
                                      "--num-processes", "2"])  # fmt: skip
    assert result.exit_code == 2 and calls == [] and "not under a launcher" in result.output


def test_the_child_program_is_started_as_this_one_was(monkeypatch):
    import sys
    import types

    from celltext.cli.launch import child_program

    as_module = types.ModuleType("__main__")
    as_module.__spec__ = types.SimpleNamespace(name="celltext.__main__")
    as_module.__file__ = "/somewhere/celltext/__main__.py"
    monkeypatch.setitem(sys.modules, "__main__", as_module)
    assert child_program() == [sys.executable, "-m", "celltext"]
    as_script = types.ModuleType("__main__")
    as_script.__spec__ = None
    as_script.__file__ = "/venv/bin/celltext"
    monkeypatch.setitem(sys.modules, "__main__", as_script)
    assert child_program() == [sys.executable, "/venv/bin/celltext"]
