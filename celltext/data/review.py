"""The human-review loop.

1. ``celltext data review --n 200`` exports a deterministic, domain-stratified sample of a
   release to ``data/review/sample-<version>.csv`` with an empty ``verdict`` column.
2. A reviewer writes ``reject`` (and optionally a note) in that column.
3. ``celltext data review --apply data/review/sample-v1.csv`` appends the rejected pair ids
   to ``data/review/rejects.txt``.
4. ``celltext data build`` drops every fact whose id (or subject) is listed there.

``rejects.txt``: one entry per line; ``#`` starts a comment; an entry is a pair id
(``3f2a...`` or ``3f2a...-p``), a fact id, or ``subject: <subject>`` to drop a subject.

Review files carry text from anonymous users (feedback comments, see
:mod:`celltext.serving.feedback`), so every hop is defended: the files are read record by
record (``\\n`` only, never ``str.splitlines()``, which also splits on ``\\r``, U+2028,
U+2029 and more), a note is made one line before it reaches ``rejects.txt``, an id must look
like a pair id, and CSV cells that a spreadsheet would run as formulas are quoted.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from celltext.data.release import Release
from celltext.data.schema import DOMAINS, QAPair
from celltext.data.splits import subject_key, unit_hash
from celltext.paths import REPO_ROOT

REVIEW_DIR = REPO_ROOT / "data" / "review"
REJECTS_FILE = REVIEW_DIR / "rejects.txt"
FIELDS = ("id", "split", "domain", "qtype", "subject", "question", "answer", "verdict", "note")
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")  # controls and line breaks
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet runs (OWASP CSV injection)
_PAIR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class RejectList:
    """Fact ids and subjects that reviewers rejected."""

    ids: set[str] = field(default_factory=set)
    subjects: set[str] = field(default_factory=set)

    def rejects(self, fid: str, subject: str) -> bool:
        """Whether a fact (by id or subject) is rejected."""
        return fid in self.ids or subject_key(subject) in self.subjects

    def __len__(self) -> int:
        return len(self.ids) + len(self.subjects)


def load_rejects(path: str | Path | None = None) -> RejectList:
    """Read a reject list; a missing file is an empty list."""
    path = Path(path) if path else REJECTS_FILE
    out = RejectList()
    if not path.exists():
        return out
    for raw in _records(path):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.lower().startswith("subject:"):
            out.subjects.add(subject_key(line.split(":", 1)[1]))
        else:
            out.ids.add(line.removesuffix("-p"))  # a paraphrase pair id names its fact
    return out


def sample_for_review(release: Release, n: int = 200, salt: str = "review") -> list[QAPair]:
    """A deterministic sample of ``n`` pairs, spread evenly over the domains."""
    pairs = sorted(release.pairs(), key=lambda p: unit_hash(p.id, salt))
    per_domain = max(1, n // len(DOMAINS))
    chosen: list[QAPair] = []
    for domain in DOMAINS:
        chosen += [p for p in pairs if p.domain == domain][:per_domain]
    rest = [p for p in pairs if p not in set(chosen)]
    return chosen + rest[: max(0, n - len(chosen))]


def export_sample(pairs: list[QAPair], out: str | Path) -> Path:
    """Write pairs for review as CSV (``.csv``) or JSONL (anything else)."""
    rows = [{**{k: getattr(p, k) for k in FIELDS[:7]}, "verdict": "", "note": ""} for p in pairs]
    return write_review_rows(rows, out)


def write_review_rows(rows: Iterable[dict], out: str | Path) -> Path:
    """Write review rows (the :data:`FIELDS`) as CSV (``.csv``, formula cells quoted with
    ``'``) or JSONL (one record per ``\\n``-terminated line, U+2028/U+2029 escaped)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        with open(out, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")  # only in strings
        out.write_text(text, encoding="utf-8", newline="")
    return out


def csv_cell(value: object) -> object:
    """``value`` safe for a spreadsheet: text starting like a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def one_line(text: str) -> str:
    """``text`` with every control character and line or paragraph separator (each run of
    them) replaced by one space: it can never start a new entry in a line-based file."""
    return _BREAKS.sub(" ", text).strip()


def _records(path: Path) -> list[str]:
    """The ``\\n``-separated records of a text file (a trailing ``\\r`` dropped)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return [line.removesuffix("\r") for line in fh.read().split("\n")]


def read_verdicts(path: str | Path) -> list[dict[str, str]]:
    """Rows of a reviewed CSV or JSONL file (a JSONL record ends at ``\\n`` only)."""
    path = Path(path)
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    return [json.loads(line) for line in _records(path) if line.strip()]


def count_verdicts(path: str | Path) -> int:
    """How many rows of a review file carry a verdict or a note (0 if there is no file)."""
    path = Path(path)
    if not path.is_file():
        return 0
    try:
        rows = read_verdicts(path)
    except (ValueError, csv.Error, UnicodeDecodeError):
        return 1  # unreadable as a review file: treat it as someone's work
    return sum(
        bool((r.get("verdict") or "").strip() or (r.get("note") or "").strip()) for r in rows
    )


def apply_verdicts(reviewed: str | Path, rejects: str | Path | None = None) -> int:
    """Append the ids marked ``reject`` in a reviewed file to the reject list; returns count.
    A rejected row whose id is not a pair id is an error (nothing is written)."""
    rejects = Path(rejects) if rejects else REJECTS_FILE
    existing = load_rejects(rejects)
    new = []
    for i, row in enumerate(read_verdicts(reviewed), start=1):
        if (row.get("verdict") or "").strip().lower() in {"reject", "rejected", "bad", "x"}:
            fid = str(row.get("id") or "").strip().removesuffix("-p")
            if not _PAIR_ID.fullmatch(fid):
                raise ValueError(f"{reviewed}: row {i}: id {fid[:80]!r} is not a pair id")
            if fid not in existing.ids and fid not in new:
                note = one_line(str(row.get("note") or ""))
                new.append(fid if not note else f"{fid}  # {note}")
    if new:
        rejects.parent.mkdir(parents=True, exist_ok=True)
        with open(rejects, "a", encoding="utf-8", newline="") as fh:
            fh.write("".join(line + "\n" for line in new))
    return len(new)
