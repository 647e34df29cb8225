"""The review loop's files (hardening issue, item 2): a reject list and a review file are read
record by record, so text inside a note can never become an entry of its own."""

from __future__ import annotations

import json

import pytest

from celltext.data.review import apply_verdicts, load_rejects, read_verdicts, write_review_rows

BREAKS = ["\u2028", "\u2029", "\r", "\x85", "\x0b", "\x0c", "\x1e"]


def _row(rid: str, note: str, verdict: str = "reject") -> dict:
    return {"id": rid, "split": "train", "domain": "", "qtype": "", "subject": "",
            "question": "q", "answer": "a", "verdict": verdict, "note": note}  # fmt: skip


@pytest.mark.parametrize("brk", BREAKS)
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_note_cannot_add_reject_entries(tmp_path, brk, suffix):
    note = f"wrong{brk}subject: neural network{brk}deadbeefdeadbeef{brk}"
    reviewed = write_review_rows([_row("id1", note)], tmp_path / f"reviewed{suffix}")
    (back,) = read_verdicts(reviewed)
    assert back["id"] == "id1" and "neural network" in back["note"]
    rejects = tmp_path / "rejects.txt"
    assert apply_verdicts(reviewed, rejects) == 1
    got = load_rejects(rejects)
    assert got.ids == {"id1"} and got.subjects == set()
    assert len(rejects.read_text(encoding="utf-8").split("\n")) == 2  # one entry, one newline


@pytest.mark.parametrize("brk", BREAKS)
def test_reject_list_is_read_by_newline_only(tmp_path, brk):
    rejects = tmp_path / "rejects.txt"
    text = f"id1  # a note{brk}subject: gradient descent{brk}cafebabe\r\nsubject: Bitmap\r\n"
    rejects.write_bytes(text.encode("utf-8"))
    got = load_rejects(rejects)
    assert got.ids == {"id1"} and got.subjects == {"bitmap"}


def test_jsonl_review_file_with_line_separators_is_read(tmp_path):
    path = tmp_path / "reviewed.jsonl"
    rows = [_row("id1", "a\u2028b"), _row("id2", "c\u2029d\re", verdict="")]
    raw = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)  # separators raw
    path.write_bytes(raw.encode("utf-8"))
    assert [r["note"] for r in read_verdicts(path)] == ["a\u2028b", "c\u2029d\re"]


def test_row_with_a_forged_id_is_refused(tmp_path):
    reviewed = write_review_rows(
        [_row("id1\u2028subject: neural network", "")], tmp_path / "reviewed.jsonl"
    )
    with pytest.raises(ValueError, match="row 1.*not a pair id"):
        apply_verdicts(reviewed, tmp_path / "rejects.txt")
    assert not (tmp_path / "rejects.txt").exists()


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)",
                                  "\t=1", "\r=1"])  # fmt: skip
def test_csv_cells_cannot_be_formulas(tmp_path, cell):
    row = {**_row("id1", cell, verdict=""), "question": cell, "answer": cell}
    (back,) = read_verdicts(write_review_rows([row], tmp_path / "review.csv"))
    for key in ("question", "answer", "note"):
        assert back[key][0] not in "=+-@\t\r" and cell.strip() in back[key]
    assert back["id"] == "id1"


def test_cli_refuses_a_forged_id_with_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from celltext.cli import app

    reviewed = write_review_rows(
        [_row("id1\u2028subject: neural network", "")], tmp_path / "reviewed.jsonl"
    )
    rejects = tmp_path / "rejects.txt"
    result = CliRunner().invoke(
        app, ["data", "review", "--apply", str(reviewed), "--rejects", str(rejects), "--json"]
    )
    assert result.exit_code == 2 and "not a pair id" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not rejects.exists()
