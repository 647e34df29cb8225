"""The held-out natural-question set (data/heldout/natural_v1.jsonl) and the scoring of a split
that mixes answerable and unanswerable questions."""

from __future__ import annotations

import json
import re
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from celltext.data.heldout import (
    HELDOUT_DIR,
    HELDOUT_SPLITS,
    NATURAL_FILE,
    HeldoutPair,
    is_answerable,
    load_heldout,
    load_natural,
)
from celltext.evaluation.natural import evaluate_natural
from celltext.evaluation.scoring import mixed_selective_metrics, risk_coverage

PATH = HELDOUT_DIR / NATURAL_FILE
AI_DOMAINS = {
    "ai_ml_fundamentals", "deep_learning", "nlp_llm", "computer_vision",
    "reinforcement_learning", "mlops_engineering",
}  # fmt: skip
UNANSWERABLE_KINDS = {
    "who", "when", "why", "how_many", "causes", "comparison", "how_to", "quantity", "other",
}  # fmt: skip


def _norm(text: str) -> str:
    """Case- and punctuation-insensitive form of a question."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


@pytest.fixture(scope="module")
def raw_rows() -> list[dict]:
    return [json.loads(line) for line in PATH.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def release():
    from celltext.data.release import load_release

    try:
        return load_release("v2")
    except FileNotFoundError:
        pytest.skip("release v2 is not on disk")


# -- the file ----------------------------------------------------------------------------------
def test_the_set_loads_with_enough_rows_of_each_part():
    assert "heldout_natural" in HELDOUT_SPLITS
    rows = load_heldout("heldout_natural")
    answerable = [r for r in rows if r.answerable]
    unanswerable = [r for r in rows if not r.answerable]
    assert len(rows) >= 300 and len(answerable) >= 220 and len(unanswerable) >= 80
    assert len({r.id for r in rows}) == len(rows)
    assert len({_norm(r.question) for r in rows}) == len(rows)  # no question twice
    assert all(r.id == f"hn-{i:04d}" for i, r in enumerate(rows, 1))
    for r in unanswerable:
        assert r.answer == "" and r.domain == "out_of_scope" and r.kind in UNANSWERABLE_KINDS
        assert not is_answerable(r)
    for r in answerable:
        assert r.answer and r.domain != "out_of_scope" and r.kind == r.qtype and is_answerable(r)
    # at least 60 % of the answerable questions in the six AI/ML domains
    assert sum(r.domain in AI_DOMAINS for r in answerable) >= 0.6 * len(answerable)
    # definitions are the most asked; several question types are covered
    qtypes = Counter(r.qtype for r in answerable)
    assert qtypes.most_common(1)[0][0] == "definition" and len(qtypes) >= 8


def test_every_row_has_the_schema(raw_rows):
    keys = {"id", "question", "answerable", "answer", "subject", "qtype", "domain",
            "source_pair", "kind", "style"}  # fmt: skip
    for row in raw_rows:
        assert set(row) == keys, row["id"]
        assert row["style"] and row["question"] == row["question"].strip()
        if not row["answerable"]:
            assert row["subject"] == row["qtype"] == row["source_pair"] == "", row["id"]


def test_answerable_rows_are_v2_train_pairs_with_the_same_answer(raw_rows, release):
    train = {p.id: p for p in release.pairs("train")}
    for row in raw_rows:
        if not row["answerable"]:
            continue
        pair = train.get(row["source_pair"])
        assert pair is not None, f"{row['id']}: {row['source_pair']} is not a v2 train pair"
        assert pair.split == "train"
        assert (row["answer"], row["subject"], row["qtype"], row["domain"]) == (
            pair.answer, pair.subject, pair.qtype, pair.domain,
        ), row["id"]  # fmt: skip
    used = [r["source_pair"] for r in raw_rows if r["answerable"]]
    assert len(set(used)) == len(used)


def test_no_question_is_a_release_question(raw_rows, release):
    known = {_norm(p.question) for p in release.pairs()}  # every split
    clashes = [r["question"] for r in raw_rows if _norm(r["question"]) in known]
    assert clashes == []


def test_unanswerable_rows_are_not_release_subjects_asked_plainly(raw_rows, release):
    """A spot check of the unanswerable kinds: no v2 train answer states a melting point,
    a boiling point or who invented the perceptron."""
    answers = [p.answer.lower() for p in release.pairs("train")]
    assert not any("melting point" in a or "boiling point" in a for a in answers)
    assert not any("perceptron" in a and ("invent" in a or "rosenblatt" in a) for a in answers)
    asked = {r["question"] for r in raw_rows if not r["answerable"]}
    assert {"who invented the perceptron", "melting point of iron"} <= asked


# -- loading errors ----------------------------------------------------------------------------
GOOD = {"id": "hn-0001", "question": "whats dropout", "answerable": True, "domain": "deep_learning",
        "answer": "Dropout is a regularisation technique.", "kind": "definition"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"answerable": "yes"}, "answerable must be true or false"),
        ({"answer": ""}, "needs a reference answer"),
        ({"answerable": False}, 'needs answer ""'),
        ({"question": " "}, "empty question"),
        ({"kind": None}, "kind must be a string"),
        (None, "missing answer"),
    ],
)
def test_malformed_lines_name_the_file_and_line(tmp_path, change, message):
    bad = dict(GOOD, **change) if change else {k: v for k, v in GOOD.items() if k != "answer"}
    path = tmp_path / "natural.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(dict(bad, id="hn-0002")) + "\n")
    with pytest.raises(ValueError, match=rf"natural\.jsonl:3: malformed held-out line .*{message}"):
        load_natural(path)


def test_bad_json_and_repeated_ids_are_rejected(tmp_path):
    path = tmp_path / "natural.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"natural\.jsonl:2: malformed"):
        load_natural(path)
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    with pytest.raises(ValueError, match=r"natural\.jsonl:2: repeated id 'hn-0001'"):
        load_natural(path)
    unanswerable = dict(GOOD, id="hn-0002", answerable=False, answer="", domain="out_of_scope",
                        kind="who")  # fmt: skip
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(unanswerable) + "\n")
    rows = load_natural(path)
    assert [r.answerable for r in rows] == [True, False] and rows[1].kind == "who"


# -- scoring -----------------------------------------------------------------------------------
def test_mixed_metrics_on_a_hand_made_example():
    # rows: 4 answerable (A) then 2 unanswerable (U)
    #   A0 served correct (0.9) | A1 served wrong (0.8) | A2 abstained, guess correct (0.3)
    #   A3 served correct (0.6) | U4 served (0.7)        | U5 abstained (0.1)
    answerable = [True, True, True, True, False, False]
    served = [True, True, False, True, True, False]
    correct = [True, False, True, True, True, False]  # U4's "correct" must be ignored
    conf = [0.9, 0.8, 0.3, 0.6, 0.7, 0.1]
    m = mixed_selective_metrics(answerable, served, correct, conf)
    assert m["served_wrong_rate"] == pytest.approx(2 / 4)  # A1 and U4 of 4 served
    assert m["answerable_correct_rate"] == pytest.approx(2 / 4)  # A0, A3
    assert m["answerable_abstention_rate"] == pytest.approx(1 / 4)
    assert m["unanswerable_abstention_rate"] == pytest.approx(1 / 2)
    assert m["answerable_best_guess_accuracy"] == pytest.approx(3 / 4)
    assert m["coverage"] == pytest.approx(4 / 6)
    points = {p["threshold"]: p for p in m["risk_coverage"]["points"]}
    # t = 0.65 serves A0, A1, U4: one right of three
    p = points[0.65]
    assert (p["coverage"], p["risk"]) == (pytest.approx(3 / 6), pytest.approx(2 / 3))
    assert p["answerable_correct_rate"] == pytest.approx(1 / 4)
    assert p["unanswerable_served_rate"] == pytest.approx(1 / 2)
    assert points[0.0]["coverage"] == 1.0 and points[0.0]["risk"] == pytest.approx(3 / 6)
    nothing = {"coverage": 0.0, "risk": 0.0, "answerable_correct_rate": 0.0,
               "unanswerable_served_rate": 0.0}  # fmt: skip
    assert points[1.0] == {"threshold": 1.0, **nothing}
    # AURC: by confidence A0 ok, A1 wrong, U4 wrong, A3 ok, A2 ok, U5 wrong; each step 1/6
    risks = [0 / 1, 1 / 2, 2 / 3, 2 / 4, 2 / 5, 3 / 6]
    assert m["risk_coverage"]["aurc"] == pytest.approx(sum(risks) / 6, abs=1e-6)


def test_risk_coverage_serves_tied_confidences_together():
    curve = risk_coverage(np.array([0.5, 0.5, 0.2]), np.array([True, True, False]),
                          np.array([True, False, False]), thresholds=[0.5])  # fmt: skip
    assert curve["points"][0]["coverage"] == pytest.approx(2 / 3)
    assert curve["points"][0]["risk"] == pytest.approx(1 / 2)
    # steps: (2/3, risk 1/2), (1, risk 2/3)
    assert curve["aurc"] == pytest.approx(2 / 3 * 1 / 2 + 1 / 3 * 2 / 3, abs=1e-6)


def test_no_confidences_no_curve_and_empty_parts_score_zero():
    m = mixed_selective_metrics([False, False], [False, False], [False, False])
    assert "risk_coverage" not in m and "calibration_error" not in m
    assert m["served_wrong_rate"] == 0.0 and m["answerable_correct_rate"] == 0.0
    assert m["unanswerable_abstention_rate"] == 1.0
    with pytest.raises(ValueError, match="one entry per row"):
        mixed_selective_metrics([True], [True, False], [True])


class _ScriptedSystem:
    """Answers each question with a fixed (answer, confidence, abstained)."""

    def __init__(self, script):
        self.script = script

    def predict(self, questions, cache=True):
        return [SimpleNamespace(answer=a, confidence=c, abstained=ab)
                for a, c, ab in (self.script[q] for q in questions)]  # fmt: skip

    def answer_texts(self, questions, cache=True):
        return [self.script[q][0] for q in questions]


def test_evaluate_natural_scores_answerable_and_unanswerable_rows(hash_teacher):
    ref_a = "Dropout randomly zeroes activations during training."
    ref_b = "A tokenizer converts text into token ids."
    pairs = [
        HeldoutPair("n1", "whats dropout", ref_a, "deep_learning", "dropout", "definition"),
        HeldoutPair("n2", "tokenizer??", ref_b, "nlp_llm", "tokenizer", "definition"),
        HeldoutPair("n3", "who invented dropout", "", "out_of_scope", answerable=False, kind="who"),
        HeldoutPair("n4", "capital of mars", "", "out_of_scope", answerable=False, kind="other"),
    ]
    system = _ScriptedSystem({
        "whats dropout": (ref_a, 0.9, False),                   # served, correct
        "tokenizer??": ("Paris is a city in France.", 0.7, False),  # served, wrong
        "who invented dropout": (ref_a, 0.8, False),            # served: wrong
        "capital of mars": ("Mars is a planet.", 0.2, True),    # abstained
    })  # fmt: skip
    events = []
    rep = evaluate_natural(system, pairs, hash_teacher, latency_samples=2,
                           on_progress=lambda *e: events.append(e))  # fmt: skip
    m = rep["metrics"]
    assert m["served_wrong_rate"] == pytest.approx(2 / 3)
    assert m["answerable_correct_rate"] == pytest.approx(1 / 2)
    assert m["unanswerable_abstention_rate"] == pytest.approx(1 / 2)
    assert m["answerable_abstention_rate"] == 0.0
    assert m["answerable_exact_match"] == pytest.approx(1 / 2)
    assert 0.0 <= m["answerable_semantic_similarity"] <= 1.0
    assert rep["counts"] == {"n": 4, "answerable": 2, "unanswerable": 2, "served": 3,
                             "abstained": 1, "answerable_correct_served": 1,
                             "unanswerable_served": 1}  # fmt: skip
    assert rep["per_domain"]["out_of_scope"] == {"n": 2, "abstention_rate": 0.5}
    assert rep["per_domain"]["deep_learning"]["answerable_correct_rate"] == 1.0
    assert rep["per_domain"]["nlp_llm"]["answerable_correct_rate"] == 0.0
    assert rep["per_kind"] == {"other": {"n": 1, "abstention_rate": 1.0},
                               "who": {"n": 1, "abstention_rate": 0.0}}  # fmt: skip
    at_half = next(p for p in rep["risk_coverage"]["points"] if p["threshold"] == 0.5)
    assert (at_half["coverage"], at_half["risk"]) == (0.75, pytest.approx(2 / 3))
    assert events[0] == ("answer", 0, 4) and ("answer", 4, 4) in events
    assert rep["latency_ms"]["n"] == 2
    assert rep["examples"][2]["answerable"] is False and rep["examples"][3]["abstained"] is True
