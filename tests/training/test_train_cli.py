"""``celltext train``: JSON output and clear errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from celltext.cli import app


def test_train_json_and_errors(fakes, tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    ok = runner.invoke(
        app,
        [
            "train",
            "--preset",
            "tiny",
            "--out",
            str(out),
            "--no-register",
            "--no-progress",
            "--json",
            "--stage",
            "core",
            "--seed",
            "3",
        ],
    )
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.stdout)
    assert summary["stages"] == ["core"] and summary["checkpoint"] == str(out / "final")
    assert "val/cosine" in summary["metrics"]

    again = runner.invoke(app, ["train", "--preset", "tiny", "--out", str(out), "--no-register"])
    assert again.exit_code == 1 and "--resume" in again.output
    missing = runner.invoke(app, ["train", "--no-register"])
    assert missing.exit_code == 1 and "--preset" in missing.output
    bad = runner.invoke(
        app,
        [
            "train",
            "--preset",
            "tiny",
            "--set",
            "stages.core.train.lrr=1",
            "--out",
            str(tmp_path / "x"),
            "--no-register",
        ],
    )
    assert bad.exit_code == 1 and "stages.core.train.lrr" in bad.output
    unknown = runner.invoke(app, ["train", "--preset", "nope", "--no-register"])
    assert unknown.exit_code == 1 and "unknown preset" in unknown.output
