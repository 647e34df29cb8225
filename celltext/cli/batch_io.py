"""The JSONL files of ``celltext answer``: reading the input, resuming from the output.

Input lines are untrusted: a line that is not a JSON object with an ``id`` and a valid,
non-empty ``question`` is skipped and reported with its line number — never answered, and
never batched with good lines (a lone surrogate in one question would otherwise turn its
batch-mates' answers into ``teacher_error`` fallbacks). Bytes that are not UTF-8 are
replaced with U+FFFD and the line is reported.

The output is append-only and resumable. A run killed mid-write can leave one torn *last*
line (no newline): that line alone is cut off. Any other unreadable line is reported and
kept as it is — a rerun never deletes good answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from celltext.cli.common import err_console
from celltext.textcheck import text_problem

log = logging.getLogger(__name__)


def _record_id(raw: bytes) -> str | None:
    """The ``id`` of one output line, or None when the line is not a complete record."""
    try:
        row = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(row, dict) or "id" not in row:
        return None
    return str(row["id"])


def done_ids(output: Path) -> tuple[set[str], list[dict]]:
    """Ids already written to ``output``, and its unreadable lines (kept, reported).

    Only a torn last line (no trailing newline, not a complete record) is removed; a
    complete last record that lost only its newline gets the newline back.
    """
    if not output.exists():
        return set(), []
    done: set[str] = set()
    unreadable: list[dict] = []
    offset, torn = 0, None
    with output.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                torn = (lineno, raw, offset)  # only the last line can lack its newline
                break
            offset += len(raw)
            if not raw.strip():
                continue
            rid = _record_id(raw)
            if rid is None:
                unreadable.append({"line": lineno, "error": "not a complete JSON record"})
                err_console.print(
                    f"[yellow]{output}:{lineno}: unreadable line kept as it is; "
                    "its question (if any) is answered again[/]"
                )
            else:
                done.add(rid)
    if torn is not None:
        lineno, raw, start = torn
        rid = _record_id(raw)
        with output.open("r+b") as fh:
            if rid is not None:
                done.add(rid)
                fh.seek(0, 2)
                fh.write(b"\n")
            else:
                log.warning("%s:%d: dropping a torn last line (interrupted run)", output, lineno)
                fh.truncate(start)
    return done, unreadable


def _decode(raw: bytes, path: Path, lineno: int, replaced: list[dict]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        count = text.count("\ufffd") - raw.count("\ufffd".encode())
        replaced.append({"line": lineno, "replaced_chars": count})
        err_console.print(
            f"[yellow]{path}:{lineno}: not valid UTF-8; {count} character(s) replaced "
            "with U+FFFD[/]"
        )
        return text


def _check_row(row: object) -> tuple[str, str]:
    """(id, question) of one parsed input line, or ValueError saying what is wrong."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if "id" not in row or row["id"] in (None, ""):
        raise ValueError("missing 'id'")
    rid, q = str(row["id"]), row.get("question")
    if not isinstance(q, str) or not q.strip():
        raise ValueError("missing or empty 'question'")
    for field, value in (("id", rid), ("question", q)):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(f"'{field}': {problem}")
    return rid, q.strip()


def read_jsonl(
    path: Path, bad: list[dict], replaced: list[dict] | None = None
) -> Iterator[tuple[int, str, str]]:
    """(line number, id, question) of each valid line; skipped lines go to ``bad``, lines
    with non-UTF-8 bytes (answered, with U+FFFD) to ``replaced``."""
    replaced = [] if replaced is None else replaced
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            line = _decode(raw, path, lineno, replaced)
            try:
                rid, q = _check_row(json.loads(line))
            except ValueError as exc:
                bad.append({"line": lineno, "error": str(exc)[:200]})
                err_console.print(f"[yellow]{path}:{lineno}: skipped: {exc}[/]")
                continue
            yield lineno, rid, q


def count_lines(path: Path) -> int:
    """Non-blank lines of ``path`` (the progress bar's total)."""
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())
