"""The human-review loop.

1. ``celltext data review --n 200`` exports a deterministic, domain-stratified sample of a
   release to ``data/review/sample-<version>.csv`` with an empty ``verdict`` column.
2. A reviewer writes ``reject`` (and optionally a note) in that column.
3. ``celltext data review --apply data/review/sample-v1.csv`` appends the rejected pair ids
   to ``data/review/rejects.txt``.
4. ``celltext data build`` drops every fact whose id (or subject) is listed there.

``rejects.txt``: one entry per line; ``#`` starts a comment; an entry is a pair id
(``3f2a...`` or ``3f2a...-p``), a fact id, or ``subject: <subject>`` to drop a subject.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from celltext.data.release import Release
from celltext.data.schema import DOMAINS, QAPair
from celltext.data.splits import subject_key, unit_hash
from celltext.paths import REPO_ROOT

REVIEW_DIR = REPO_ROOT / "data" / "review"
REJECTS_FILE = REVIEW_DIR / "rejects.txt"
FIELDS = ("id", "split", "domain", "qtype", "subject", "question", "answer", "verdict", "note")


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
    for raw in path.read_text(encoding="utf-8").splitlines():
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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [{**{k: getattr(p, k) for k in FIELDS[:7]}, "verdict": "", "note": ""} for p in pairs]
    if out.suffix == ".csv":
        with open(out, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return out


def read_verdicts(path: str | Path) -> list[dict[str, str]]:
    """Rows of a reviewed CSV or JSONL file."""
    path = Path(path)
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
    """Append the ids marked ``reject`` in a reviewed file to the reject list; returns count."""
    rejects = Path(rejects) if rejects else REJECTS_FILE
    existing = load_rejects(rejects)
    new = []
    for row in read_verdicts(reviewed):
        if (row.get("verdict") or "").strip().lower() in {"reject", "rejected", "bad", "x"}:
            fid = row["id"].removesuffix("-p")
            if fid not in existing.ids and fid not in new:
                note = (row.get("note") or "").replace("\n", " ").strip()
                new.append(fid if not note else f"{fid}  # {note}")
    if new:
        rejects.parent.mkdir(parents=True, exist_ok=True)
        with open(rejects, "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in new))
    return len(new)
