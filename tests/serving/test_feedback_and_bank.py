"""Feedback export into the dataset review loop; the release phrase bank, built once."""

from __future__ import annotations

import pytest
from serving_tiny import PAIRS, tiny_release

from celltext.index import RetrievalIndex
from celltext.paths import DEFAULT_RELEASE
from celltext.serving.feedback import FeedbackStore


@pytest.fixture
def release(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLTEXT_RELEASES", str(tmp_path / "releases"))
    tiny_release(tmp_path / "releases")
    from celltext.data.release import load_release

    return load_release()


def test_thumbs_down_on_a_bank_answer_can_be_rejected_in_review(release, tmp_path):
    from celltext.data.review import apply_verdicts, read_verdicts

    store = FeedbackStore(tmp_path / "fb.sqlite3")
    store.add(
        "What is SGD?", PAIRS[2][1], "down", model="m+fallback", fallback=True, confidence=0.4
    )
    store.add("Who are you?", "I am a model.", "down", model="m", fallback=False)
    store.add("What is a tokenizer?", PAIRS[4][1], "up")
    out = store.export_review(tmp_path / "review.csv", release=release)
    rows = read_verdicts(out)
    assert [r["id"] for r in rows] == ["train-2", "feedback-2"]  # thumbs-down only
    assert rows[0]["answer"] == PAIRS[2][1] and rows[0]["verdict"] == ""
    assert "asked 'What is SGD?'" in rows[0]["note"]
    rows[0]["verdict"] = "reject"  # the reviewer's decision
    import csv

    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    rejects = tmp_path / "rejects.txt"
    assert apply_verdicts(out, rejects) == 1
    assert rejects.read_text().startswith("train-2")


def test_release_bank_is_built_once_then_loaded(release, teacher, monkeypatch):
    bank = RetrievalIndex.for_release(teacher)
    assert bank.answers == [a for _, a in PAIRS] and bank.source.startswith(f"{DEFAULT_RELEASE}-")
    monkeypatch.setattr(teacher, "encode", lambda *a, **k: pytest.fail("re-embedded"))
    again = RetrievalIndex.for_release(teacher)
    assert again.questions == bank.questions
