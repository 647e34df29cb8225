"""``celltext ask`` / ``celltext answer`` with hostile or damaged files (issue 14, items 1, 4, 5,
9 and 12): invalid text is refused or skipped and reported, a rerun never deletes answers,
ids keep their JSON type, and a bad output is refused before the model loads."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest
from serving_tiny import PAIRS, tiny_checkpoint, tiny_release  # noqa: E402
from typer.testing import CliRunner

import celltext.cli.inference as inference_cli
from celltext.cli import app, batch_io  # noqa: E402

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


HUGE = b"x" * (32 << 20)  # 32 MiB without a newline: 32 times the longest line read


def _peak_bytes(fn):
    """``fn()`` and the most memory Python held at once while it ran."""
    tracemalloc.start()
    try:
        return fn(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_overlong_input_line_is_reported_by_number_and_never_read_whole(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join([_good(0).encode(), HUGE, _good(1).encode(), HUGE]))  # no last \n
    bad: list[dict] = []
    (rows, total), peak = _peak_bytes(lambda: (list(batch_io.read_jsonl(src, bad)),
                                               batch_io.count_lines(src)))  # fmt: skip
    assert [(n, rid) for n, rid, _ in rows] == [(1, "q0"), (3, "q1")] and total == 4
    assert [b["line"] for b in bad] == [2, 4]
    assert all("longer than" in b["error"] for b in bad), bad
    assert peak < 8 << 20, f"held {peak} bytes at once"


def test_an_overlong_output_line_is_kept_and_reported_without_reading_it_whole(tmp_path):
    dst = tmp_path / "out.jsonl"
    dst.write_bytes(b"\n".join([_good(0).encode(), HUGE, _good(1).encode(), b""]))
    (done, unreadable), peak = _peak_bytes(lambda: batch_io.done_ids(dst))
    assert set(done) == {"q0", "q1"} and [u["line"] for u in unreadable] == [2]
    assert peak < 8 << 20, f"held {peak} bytes at once"
    assert dst.stat().st_size == len(HUGE) + len(_good(0)) + len(_good(1)) + 3  # kept


def test_ids_keep_their_json_type_and_only_strings_and_integers_are_ids(ckpt, tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = [1, "1", {"a": 1}, 1.5, True, [1]]
    src.write_text("".join(json.dumps({"id": i, "question": PAIRS[0][0]}) + "\n" for i in ids))
    summary = _answer(ckpt, src, dst)
    assert summary["written"] == 2 and [m["line"] for m in summary["malformed"]] == [3, 4, 5, 6]
    assert all("a string or an integer" in m["error"] for m in summary["malformed"])
    assert [json.loads(line)["id"] for line in dst.read_text().splitlines()] == [1, "1"]
    again = _answer(ckpt, src, dst)
    assert again["written"] == 0 and again["skipped_existing"] == 2


def test_a_known_id_with_another_question_is_an_error_not_a_skip(ckpt, tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [("q0", 0), ("q0", 1), ("q0", 0), ("q1", 1)]
    src.write_text("".join(json.dumps({"id": i, "question": PAIRS[k][0]}) + "\n" for i, k in rows))
    summary = _answer(ckpt, src, dst)
    assert summary["written"] == 2 and summary["skipped_existing"] == 1  # line 3 repeats line 1
    assert [m["line"] for m in summary["malformed"]] == [2]
    assert 'id "q0"' in summary["malformed"][0]["error"]
    assert "input line 1" in summary["malformed"][0]["error"]
    # the output of an earlier run holds q1 with another question
    src.write_text(json.dumps({"id": "q1", "question": PAIRS[2][0]}) + "\n")
    again = _answer(ckpt, src, dst)
    assert again["written"] == 0 and again["skipped_existing"] == 0
    assert [m["line"] for m in again["malformed"]] == [1]
    assert "output line 2" in again["malformed"][0]["error"]


def _invoke(src: Path, dst: Path, model: str = "unused") -> object:
    return runner.invoke(app, ["answer", "-i", str(src), "-o", str(dst), "-m", model, "--json"])


def _model_must_not_load(monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(inference_cli, "_predictor", boom)


@pytest.mark.parametrize("link", [None, "symlink", "hard link"])
def test_the_input_as_output_is_refused(tmp_path, monkeypatch, link):
    _model_must_not_load(monkeypatch)
    src = tmp_path / "in.jsonl"
    src.write_text(_good(0) + "\n")
    dst = src if link is None else tmp_path / "out.jsonl"
    if link == "symlink":
        dst.symlink_to(src)
    elif link == "hard link":
        os.link(src, dst)
    result = _invoke(src, dst)
    assert result.exit_code == 2, result.output
    assert "the same file" in json.loads(result.stdout)["error"]
    assert src.read_text() == _good(0) + "\n"


def test_an_output_under_a_file_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    _model_must_not_load(monkeypatch)
    src, blocker = tmp_path / "in.jsonl", tmp_path / "a-file"
    src.write_text(_good(0) + "\n")
    blocker.write_text("")
    result = _invoke(src, blocker / "out.jsonl")
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert str(blocker / "out.jsonl") in error and f"{blocker} is a file" in error
    assert not blocker.read_text()
    deeper = _invoke(src, blocker / "sub" / "out.jsonl")
    assert deeper.exit_code == 2 and "Not a directory" in json.loads(deeper.stdout)["error"]


def test_a_model_that_does_not_load_leaves_no_new_output(tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "new" / "out.jsonl"
    src.write_text(_good(0) + "\n")
    result = _invoke(src, dst, model=str(tmp_path / "no-such-model"))
    assert result.exit_code == 1 and "cannot load model" in json.loads(result.stdout)["error"]
    assert not dst.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_output_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    _model_must_not_load(monkeypatch)
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(_good(0) + "\n")
    dst.write_text("")
    dst.chmod(0o444)
    result = _invoke(src, dst)
    assert result.exit_code == 2 and "Permission denied" in json.loads(result.stdout)["error"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (ENOSPC)")
@pytest.mark.parametrize("as_json", [True, False])
def test_a_full_disk_is_one_clear_error_and_a_failing_exit(ckpt, tmp_path, as_json):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(_good(i) for i in range(3)) + "\n")
    args = ["answer", "-i", str(src), "-o", "/dev/full", "-m", ckpt, *(["--json"] * as_json)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "No space left on device" in result.output and "Traceback" not in result.output
    if as_json:
        assert "No space left on device" in json.loads(result.stdout)["error"]
