"""User feedback (thumbs up/down on an answer) in SQLite, exportable to the data review loop.

One table, ``feedback``; the database lives at ``home_dir()/feedback.sqlite3`` unless the
service is told otherwise. Each call opens its own connection (the service writes from
several threads and, behind a load balancer, several processes; WAL journaling lets them
share the file). :meth:`FeedbackStore.add` counts and inserts in one ``BEGIN IMMEDIATE``
transaction, so the row limit holds however many workers write at once.

:meth:`FeedbackStore.export_review` writes the thumbs-down answers as a review file in the
columns of :mod:`celltext.data.review` (``id, split, domain, qtype, subject, question, answer,
verdict, note``) with the verdict left empty: a reviewer writes ``reject`` and
``celltext data review --apply FILE`` adds the pair to the reject list. Rated answers that
came from the phrase bank map back to their release pair.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from celltext.data.review import one_line, write_review_rows
from celltext.paths import home_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    model TEXT,
    fallback INTEGER,
    confidence REAL,
    comment TEXT
)
"""

RATINGS = {"up": 1, "down": -1}


class FeedbackFull(Exception):
    """The store already holds ``max_rows`` ratings."""

    def __init__(self, max_rows: int):
        super().__init__(f"the feedback store is full ({max_rows} rows)")
        self.max_rows = max_rows


def is_disk_full(exc: BaseException) -> bool:
    """Whether a storage error means the disk (or SQLite's size limit) is full."""
    if getattr(exc, "sqlite_errorname", None) == "SQLITE_FULL":
        return True
    return "disk is full" in str(exc) or getattr(exc, "errno", None) == errno.ENOSPC


def default_feedback_path() -> Path:
    """``home_dir()/feedback.sqlite3``."""
    return home_dir() / "feedback.sqlite3"


class FeedbackStore:
    """Append-only store of ratings."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_feedback_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)  # explicit BEGINs
        con.row_factory = sqlite3.Row
        return con

    def add(
        self,
        question: str,
        answer: str,
        rating: str,
        model: str | None = None,
        fallback: bool | None = None,
        confidence: float | None = None,
        comment: str | None = None,
        max_rows: int | None = None,
    ) -> int:
        """Store one rating (``"up"`` or ``"down"``); returns its id. With ``max_rows``,
        :class:`FeedbackFull` when the store already holds that many: the count and the insert
        are one write transaction, so concurrent writers (threads or processes) cannot
        overshoot the limit. SQLite errors (a full disk, a lock held too long) propagate."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be 'up' or 'down', got {rating!r}")
        row = (
            time.time(), question, answer, RATINGS[rating], model,
            None if fallback is None else int(fallback), confidence, comment,
        )  # fmt: skip
        with closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")  # take the write lock before counting
            try:
                if max_rows is not None:
                    (n,) = con.execute("SELECT COUNT(*) FROM feedback").fetchone()
                    if n >= max_rows:
                        raise FeedbackFull(max_rows)
                cur = con.execute(
                    "INSERT INTO feedback (created, question, answer, rating, model, fallback,"
                    " confidence, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                con.execute("COMMIT")
            finally:
                if con.in_transaction:  # SQLite may already have rolled back (SQLITE_FULL)
                    con.execute("ROLLBACK")
            return int(cur.lastrowid)

    def rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored ratings, newest first."""
        sql = "SELECT * FROM feedback ORDER BY id DESC"
        params: tuple = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (int(limit),)
        with closing(self._connect()) as con:
            return [_row(r) for r in con.execute(sql, params)]

    def counts(self) -> dict[str, int]:
        """``{"up": n, "down": m}``."""
        with closing(self._connect()) as con:
            got = dict(con.execute("SELECT rating, COUNT(*) FROM feedback GROUP BY rating"))
        return {"up": int(got.get(1, 0)), "down": int(got.get(-1, 0))}

    def export_review(self, out: str | Path, only_down: bool = True, release=None) -> Path:
        """Write ratings as a review file for ``celltext data review --apply`` (CSV for a
        ``.csv`` path, else JSONL); see :func:`review_record`. Returns the path."""
        by_answer = {}
        if release is not None:
            by_answer = {p.answer: p for p in release.pairs()}
        rows = [
            review_record(r, by_answer.get(r["answer"]))
            for r in reversed(self.rows())
            if not only_down or r["rating"] == "down"
        ]
        return write_review_rows(rows, out)


# the columns of celltext.data.review (FIELDS); the verdict is left for the reviewer
REVIEW_FIELDS = (
    "id",
    "split",
    "domain",
    "qtype",
    "subject",
    "question",
    "answer",
    "verdict",
    "note",
)


def review_record(row: dict[str, Any], pair=None) -> dict[str, Any]:
    """One rating as a review row. When the rated answer is a release pair's answer (a
    phrase-bank fallback), the row is that pair, so rejecting it drops the pair from the next
    build; otherwise it is the model's answer (``id`` ``feedback-N``, split ``feedback``),
    for reading only. ``verdict`` is always empty: a human decides. The ``note`` quotes the
    user's text made one line (:func:`~celltext.data.review.one_line`): ``apply`` copies it
    into ``rejects.txt``, where a line break would start a new entry."""
    note = (
        f"user rated {row['rating']}; asked {row['question']!r}; model {row.get('model')}; "
        f"fallback {row.get('fallback')}; confidence {row.get('confidence')}"
    )
    if row.get("comment"):
        note += f"; comment: {row['comment']}"
    if pair is not None:
        fields = {k: getattr(pair, k) for k in REVIEW_FIELDS[:7]}
    else:
        fields = {"id": f"feedback-{row['id']}", "split": "feedback", "domain": "", "qtype": "",
                  "subject": "", "question": row["question"], "answer": row["answer"]}  # fmt: skip
    return {**fields, "verdict": "", "note": one_line(note)}


def _row(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d["rating"] = "up" if d["rating"] == 1 else "down"
    d["fallback"] = None if d["fallback"] is None else bool(d["fallback"])
    return d
