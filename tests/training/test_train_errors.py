"""``celltext train --release DAMAGED`` (issue 14, item 10): one error line naming the file
and the line, a JSON error document under ``--json``, and no stray ``run.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from test_release_errors import damage_line  # noqa: E402
from training_fakes import HashTeacher, synthetic_pairs  # noqa: E402

from celltext.cli import app  # noqa: E402
from celltext.data.release import write_release  # noqa: E402


def test_damaged_release_is_a_clean_error_and_leaves_no_run(tmp_path, monkeypatch):
    import celltext.teacher

    monkeypatch.setattr(celltext.teacher, "load_teacher", lambda name, **kw: HashTeacher(32))
    release = write_release(synthetic_pairs(), tmp_path / "rel", "rel")
    damage_line(release, "train", 2)
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--release", str(release), "--out", str(out),
            "--no-register", "--no-progress", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "train.jsonl.gz:2: not valid JSON" in json.loads(result.stdout)["error"]
    assert not (out / "run.json").exists()  # a retry is not told "already holds a run"
