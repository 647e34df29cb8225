"""``celltext ask`` / ``celltext answer`` with hostile or damaged files (issue 14, items 1, 4, 5
and 9): invalid text is refused or skipped and reported, and a rerun never deletes answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serving_tiny import PAIRS, tiny_checkpoint, tiny_release  # noqa: E402
from typer.testing import CliRunner

from celltext.cli import app  # noqa: E402

runner = CliRunner()
POISON = '{"id": "x", "question": "What is \\ud800 RAM?"}'  # a lone surrogate, as JSON sends it


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from celltext.teacher import load_teacher

    root = tmp_path_factory.mktemp("cli-hardening")
    return str(tiny_checkpoint(root / "fitted", teacher=load_teacher("minilm"), steps=100))


@pytest.fixture(autouse=True)
def _tiny_release(tmp_path_factory, monkeypatch):
    releases = tmp_path_factory.mktemp("releases")
    tiny_release(releases)
    monkeypatch.setenv("CELLTEXT_RELEASES", str(releases))


def _answer(ckpt, src: Path, dst: Path, batch: int = 4) -> dict:
    args = ["answer", "--input", str(src), "--output", str(dst), "--model", ckpt, "--json",
            "--batch-size", str(batch)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _good(i: int) -> str:
    return json.dumps({"id": f"q{i}", "question": PAIRS[i][0]})


def test_ask_refuses_a_lone_surrogate(ckpt):
    result = runner.invoke(app, ["ask", "abc \ud800 def", "--model", ckpt])
    assert result.exit_code == 2
    assert "lone surrogate U+D800" in " ".join(result.output.split())


def test_answer_skips_a_poisoned_line_and_its_batch_mates_are_untouched(ckpt, tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join([_good(0), POISON, _good(1), _good(2)]) + "\n")
    summary = _answer(ckpt, src, dst, batch=4)  # all four would share one model batch
    assert summary["written"] == 3 and [m["line"] for m in summary["malformed"]] == [2]
    assert "lone surrogate" in summary["malformed"][0]["error"]
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q0", "q1", "q2"]
    assert [r["answer"] for r in rows] == [PAIRS[i][1] for i in range(3)]
    assert not any(r["fallback"] for r in rows)


def test_rerun_keeps_every_good_line_when_a_middle_line_is_damaged(ckpt, tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(_good(i) for i in range(5)) + "\n")
    _answer(ckpt, src, dst)
    lines = dst.read_text().splitlines()
    lines[1] = lines[1][:30]  # damaged in place, newline kept
    dst.write_text("\n".join(lines) + "\n")

    again = _answer(ckpt, src, dst)
    assert [u["line"] for u in again["unreadable_output_lines"]] == [2]
    assert again["written"] == 1 and again["skipped_existing"] == 4
    after = dst.read_text().splitlines()
    assert after[:5] == lines  # nothing deleted, the damaged line kept as it was
    assert json.loads(after[5])["id"] == "q1"


def test_only_a_torn_last_line_is_dropped(ckpt, tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(_good(i) for i in range(3)) + "\n")
    _answer(ckpt, src, dst)
    whole = dst.read_text()
    dst.write_text(whole[: whole.rindex("\n", 0, len(whole) - 1) + 20])  # tear the last record
    again = _answer(ckpt, src, dst)
    assert again["written"] == 1 and again["unreadable_output_lines"] == []
    assert [json.loads(line)["id"] for line in dst.read_text().splitlines()] == ["q0", "q1", "q2"]


def test_non_utf8_input_is_answered_with_a_warning(ckpt, tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(_good(0).encode() + b"\n" + b'{"id": "b", "question": "What is \xff RAM?"}\n')
    summary = _answer(ckpt, src, dst)
    assert summary["written"] == 2
    assert summary["replaced_characters"] == [{"line": 2, "replaced_chars": 1}]
