"""The JSONL files of ``celltext answer``: reading the input, resuming from the output.

Input lines are untrusted: a line that is not a JSON object with an ``id`` and a valid,
non-empty ``question`` is skipped and reported with its line number — never answered, and
never batched with good lines (a lone surrogate in one question would otherwise turn its
batch-mates' answers into ``teacher_error`` fallbacks). Bytes that are not UTF-8 are
replaced with U+FFFD and the line is reported. No line is read whole beyond
``MAX_LINE_BYTES``: a longer one (a file without newlines) is skipped and reported.

An ``id`` is a non-empty string or an integer (not a boolean), written to the output as
it came: ``1`` and ``"1"`` are two ids. Anything else (a float, an object, a list, null) is
a skipped line. An id seen before with the *same* question (earlier in the input, or in
the output of an earlier run) is not answered again; with a *different* question it is a
skipped line, reported with where the id was first seen.

The output is append-only and resumable. A run killed mid-write can leave one torn *last*
line (no newline): that line alone is cut off. Any other unreadable line is reported and
kept as it is — a rerun never deletes good answers. The output is opened before the model
loads, so that an unwritable one fails first; a write error (a full disk) is an
``OutputError`` with a one-line message.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from celltext.cli.common import err_console
from celltext.textcheck import text_problem

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20  # 1 MiB: a question is a sentence or a paragraph
_SKIP_CHUNK = 1 << 16

RecordId = int | str
# id -> (where it was first seen: "input line 3" / "output line 7", its question or None)
Seen = dict[RecordId, tuple[str, str | None]]


class OutputError(OSError):
    """The output cannot be opened or written; the message is one line for the user."""


class Line(NamedTuple):
    number: int
    data: bytes | None  # None: longer than the limit, not read
    size: int  # bytes, the newline included
    ended: bool  # whether it ends with a newline


def bounded_lines(fh: BinaryIO, limit: int | None = None) -> Iterator[Line]:
    """The lines of ``fh``, each read only up to ``limit`` bytes (``MAX_LINE_BYTES``)."""
    limit = MAX_LINE_BYTES if limit is None else limit
    number = 0
    while raw := fh.readline(limit + 1):
        number += 1
        if raw.endswith(b"\n") or len(raw) <= limit:
            yield Line(number, raw, len(raw), raw.endswith(b"\n"))
            continue
        size = len(raw)
        while raw and not raw.endswith(b"\n"):  # the rest of the line, never held whole
            raw = fh.readline(_SKIP_CHUNK)
            size += len(raw)
        yield Line(number, None, size, raw.endswith(b"\n"))


def _too_long(line: Line) -> str:
    return f"line longer than {MAX_LINE_BYTES} bytes ({line.size} bytes)"


def _record(raw: bytes | None) -> tuple[RecordId, str | None] | None:
    """(id, question) of one output line, or None when it is not a complete record."""
    try:
        row = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    if not isinstance(row, dict) or not _is_id(row.get("id")):
        return None
    question = row.get("question")
    return row["id"], question if isinstance(question, str) else None


def _is_id(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value != ""
    )


def done_ids(output: Path) -> tuple[Seen, list[dict]]:
    """Ids already written to ``output`` (with their questions), and its unreadable lines
    (kept, reported). Only a regular file is read: a device or a pipe is only written to.

    Only a torn last line (no trailing newline, not a complete record) is removed; a
    complete last record that lost only its newline gets the newline back.
    """
    if not output.is_file():
        return {}, []
    done: Seen = {}
    unreadable: list[dict] = []
    offset, torn = 0, None
    with output.open("rb") as fh:
        for line in bounded_lines(fh):
            if not line.ended:
                torn = line, offset  # only the last line can lack its newline
                break
            offset += line.size
            if line.data is not None and not line.data.strip():
                continue
            record = _record(line.data)
            if record is None:
                why = _too_long(line) if line.data is None else "not a complete JSON record"
                unreadable.append({"line": line.number, "error": why})
                err_console.print(
                    f"[yellow]{output}:{line.number}: unreadable line ({why}) kept as it is; "
                    "its question (if any) is answered again[/]"
                )
            else:
                done.setdefault(record[0], (f"output line {line.number}", record[1]))
    if torn is not None:
        last, start = torn
        record = _record(last.data)
        with output.open("r+b") as fh:
            if record is not None:
                done.setdefault(record[0], (f"output line {last.number}", record[1]))
                fh.seek(0, 2)
                fh.write(b"\n")
            else:
                log.warning("%s:%d: dropping a torn last line (interrupted run)", output,
                            last.number)  # fmt: skip
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


def _check_row(row: object) -> tuple[RecordId, str]:
    """(id, question) of one parsed input line, or ValueError saying what is wrong."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if "id" not in row or row["id"] in (None, ""):
        raise ValueError("missing 'id'")
    rid, q = row["id"], row.get("question")
    if not _is_id(rid):
        raise ValueError(f"'id' must be a string or an integer, not {json.dumps(rid)[:40]}")
    if not isinstance(q, str) or not q.strip():
        raise ValueError("missing or empty 'question'")
    for field, value in (("id", rid), ("question", q)):
        problem = text_problem(value) if isinstance(value, str) else None
        if problem is not None:
            raise ValueError(f"'{field}': {problem}")
    return rid, q.strip()


def read_jsonl(
    path: Path, bad: list[dict], replaced: list[dict] | None = None, seen: Seen | None = None
) -> Iterator[tuple[int, RecordId, str]]:
    """(line number, id, question) of each valid line; skipped lines go to ``bad``, lines
    with non-UTF-8 bytes (answered, with U+FFFD) to ``replaced``. An id that ``seen`` holds
    with another question is a skipped line (``seen`` is read as the lines are)."""
    replaced = [] if replaced is None else replaced
    with path.open("rb") as fh:
        for line in bounded_lines(fh):
            try:
                if line.data is None:
                    raise ValueError(_too_long(line))
                if not line.data.strip():
                    continue
                text = _decode(line.data, path, line.number, replaced)
                rid, q = _check_row(json.loads(text))
                where, first = (seen or {}).get(rid, ("", None))
                if first not in (None, q):
                    raise ValueError(f"id {json.dumps(rid)} has another question at {where}")
            except ValueError as exc:
                bad.append({"line": line.number, "error": str(exc)[:200]})
                err_console.print(f"[yellow]{path}:{line.number}: skipped: {exc}[/]")
                continue
            yield line.number, rid, q


def count_lines(path: Path) -> int | None:
    """Non-blank lines of ``path`` (the progress bar's total); None for a pipe or a device,
    which can be read only once."""
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        return sum(1 for line in bounded_lines(fh) if line.data is None or line.data.strip())


class AnswerOutput:
    """The output file, opened for appending (parents created) before the model loads.

    Each batch goes out in one unbuffered write and is synced, so a killed run loses at
    most the batch in flight and a failed write leaves nothing queued to fail again.
    """

    def __init__(self, output: Path, input: Path) -> None:
        self.path = output
        try:
            if output.exists() and os.path.samefile(input, output):
                raise OutputError(f"--output {output} is the same file as --input {input}")
            if output.parent.exists() and not output.parent.is_dir():  # not "File exists"
                raise OutputError(f"cannot write answers to {output}: {output.parent} is a file")
            output.parent.mkdir(parents=True, exist_ok=True)
            self._new = not output.exists()
            self.done, self.unreadable = done_ids(output)
            self._file = output.open("ab", buffering=0)
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write answers to {output}: {_reason(exc)}") from exc
        self._sync = stat.S_ISREG(os.fstat(self._file.fileno()).st_mode)  # not /dev/null
        self.written = 0

    def write(self, records: list[dict]) -> None:
        """Append ``records`` as JSON lines; OutputError (one line) when the OS refuses."""
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        view = memoryview(data)
        try:
            while view:
                view = view[self._file.write(view) :]
            if self._sync:
                os.fsync(self._file.fileno())
        except OSError as exc:
            raise OutputError(
                f"cannot write answers to {self.path}: {_reason(exc)} "
                f"({self.written} written before; rerun to resume)"
            ) from exc
        self.written += len(records)

    def close(self) -> None:
        self._file.close()

    def discard(self) -> None:
        """Close, and remove the output if this run created it and wrote nothing (the
        model did not load)."""
        self.close()
        if self._new and self.written == 0:
            self.path.unlink(missing_ok=True)


def _reason(exc: OSError) -> str:
    """An OSError without its ``[Errno N]``: 'No space left on device', 'Not a directory: x'."""
    if exc.strerror is None:
        return str(exc)
    return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
