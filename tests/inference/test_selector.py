"""The answer selector: features, per-kind probabilities, calibration, abstention."""

from __future__ import annotations

import json

import numpy as np
import pytest

from celltext.index import RetrievalIndex
from celltext.inference.calibrate import calibration_set, pseudo_word, reask
from celltext.inference.candidates import retrieve
from celltext.inference.selector import (
    FEATURES,
    AnswerSelector,
    expected_calibration_error,
    fit_selector,
    reliability,
    risk_coverage,
    subject_in_question,
)


def test_subject_matches_whole_words_only():
    assert subject_in_question("RAM", "What does RAM stand for?") == 1.0
    assert subject_in_question("ram", "What is a ramp?") == 0.0
    assert subject_in_question("C++", "Who designed c++?") == 1.0
    assert subject_in_question(None, "anything") == 0.0


def test_ece_of_known_cases():
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([1, 1])) == 0.0
    assert expected_calibration_error(np.array([0.9, 0.9]), np.array([0, 0])) == pytest.approx(0.9)
    rows = reliability(np.array([0.05, 0.95]), np.array([0, 1]))
    assert [r["n"] for r in rows] == [1, 1] and rows[1]["accuracy"] == 1.0


def _synthetic(n=600, seed=0):
    """Retrieved answers are right when the question matches well; model answers never."""
    rng = np.random.default_rng(seed)
    q_top1 = rng.uniform(0.3, 1.0, n)
    x = np.zeros((n, len(FEATURES)))
    x[:, 0] = q_top1
    right = (rng.uniform(size=n) < q_top1**4).astype(float)
    mats = {"retrieved": x, "nearest": x * 0.5, "edited": x * 0.1}
    correct = {"retrieved": right, "nearest": np.zeros(n), "edited": np.zeros(n)}
    return mats, correct, right


def test_fit_is_calibrated_and_prefers_the_right_kind():
    mats, correct, right = _synthetic()
    sel = fit_selector(mats, correct, np.ones(len(right), bool))
    kinds, conf = sel.choose(mats)
    assert set(kinds) == {"retrieved"}
    assert expected_calibration_error(conf, right) < 0.08
    low, high = conf[mats["retrieved"][:, 0] < 0.5], conf[mats["retrieved"][:, 0] > 0.9]
    assert low.mean() < 0.3 < 0.6 < high.mean()


def test_abstention_threshold_respects_the_in_scope_budget():
    mats, correct, right = _synthetic()
    sel = fit_selector(mats, correct, np.ones(len(right), bool), max_in_scope_abstention=0.05)
    _, conf = sel.choose(mats)
    assert 0.0 < sel.abstain_below < 1.0
    assert (conf < sel.abstain_below).mean() <= 0.05


def test_risk_rule_and_the_risk_coverage_curve():
    mats, correct, right = _synthetic()
    sel = fit_selector(mats, correct, np.ones(len(right), bool), max_risk=0.2)
    kinds, conf = sel.choose(mats)
    served = conf >= sel.abstain_below
    assert 0.0 < served.mean() < 1.0 and 1 - right[served].mean() <= 0.2
    lower = fit_selector(mats, correct, np.ones(len(right), bool), max_risk=0.4).abstain_below
    assert lower < sel.abstain_below  # more risk allowed: a lower threshold
    curve = risk_coverage(np.array([0.9, 0.8, 0.8, 0.1]), np.array([1, 1, 0, 0]))
    assert curve == [
        {"threshold": 0.1, "coverage": 1.0, "risk": 0.5},
        {"threshold": 0.8, "coverage": 0.75, "risk": pytest.approx(1 / 3)},  # ties together
        {"threshold": 0.9, "coverage": 0.25, "risk": 0.0},
    ]


def test_save_load_round_trip_and_bad_files(tmp_path):
    mats, correct, right = _synthetic(200)
    sel = fit_selector(mats, correct, np.ones(len(right), bool))
    path = sel.save(tmp_path / "selector.json")
    again = AnswerSelector.load(path)
    np.testing.assert_allclose(again.choose(mats)[1], sel.choose(mats)[1])
    data = json.loads(path.read_text())
    data["weights"]["retrieved"] = [1.0]  # wrong size
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="selector.json"):
        AnswerSelector.load(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="selector.json"):
        AnswerSelector.load(path)
    assert not AnswerSelector.for_model(tmp_path / "nowhere").fitted


def _bank():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(4, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    qs = ["What is RAM?", "What is ROM?", "What is a CPU?", "What is a GPU?"]
    ans = ["RAM is memory.", "ROM is read-only.", "A CPU computes.", "A GPU draws."]
    return RetrievalIndex(qs, ans, emb, emb, subjects=["RAM", "ROM", "CPU", "GPU"]), emb


def test_retrieve_can_hide_a_subject_to_imitate_an_unseen_one():
    bank, emb = _bank()
    q = emb[:1]
    found = retrieve(bank, ["What is RAM?"], q, q)
    assert found.retrieved[0] == 0 and found.features.subject_in_question[0] == 1.0
    hidden = np.array([[s == "RAM" for s in bank.subjects]])
    found = retrieve(bank, ["What is RAM?"], q, q, exclude=hidden)
    assert found.retrieved[0] != 0 and found.nearest[0] != 0
    assert found.features.subject_in_question[0] == 0.0


def test_calibration_set_reasks_train_facts_in_other_templates():
    class P:
        def __init__(self, i):
            self.question, self.answer, self.subject = f"What is widget{i}?", f"A{i}.", f"widget{i}"
            self.template_id = "definition_noun_q1"  # "What is {xa}?"

    train = [P(i) for i in range(50)]
    rows = calibration_set(train, train[:5], n_seen=40, n_val=5, seed=0)
    parts = {r[3] for r in rows}
    assert parts == {"seen", "unseen", "val", "out_of_scope", "open"}
    for question, ref, hidden, part in rows:
        if part == "open":  # "Who invented widget3?": a release subject, a kind no fact answers
            assert ref is None and hidden is None and "widget" in question
        if part in ("seen", "unseen"):
            assert question != f"What is {question.split()[-1]}" and "widget" in question
            assert not question.startswith("What is widget")
        if part == "out_of_scope":
            assert ref is None and "widget" not in question
        if part == "unseen":
            assert hidden is not None
    assert reask(P(1), np.random.default_rng(0)) != P(1).question
    assert pseudo_word(np.random.default_rng(1)).isalpha()
    for p in train:
        p.qtype = "definition"
    typed = calibration_set(train, train[:5], n_seen=40, n_val=5, seed=0, casual_rate=1.0)
    casual = [r for r in typed if r[3] == "casual"]
    assert len(casual) == 40  # one typed rewording per re-asked fact, the fact's answer
    assert all(ref is not None and hidden is None and "widget" in q for q, ref, hidden, _ in casual)


def test_a_stale_selector_is_refused_with_a_hint_and_not_needed_to_refit(
    fitted_ckpt, teacher, bank, tmp_path
):
    import json
    import shutil

    from celltext.inference.factory import load_predictor
    from celltext.inference.loading import load_components
    from celltext.inference.options import PredictorConfig

    model = tmp_path / "model"
    shutil.copytree(fitted_ckpt, model)
    kinds = ("retrieved", "nearest", "model")
    stale = {  # a selector fitted for one feature fewer
        "weights": {k: [0.0] * (len(FEATURES) - 1) for k in kinds},
        "bias": dict.fromkeys(kinds, 0.0), "platt": [1.0, 0.0], "abstain_below": 0.2,
    }  # fmt: skip
    (model / "selector.json").write_text(json.dumps(stale))
    with pytest.raises(ValueError, match="refit"):
        load_predictor(str(model), teacher=teacher, bank=bank)
    parts = load_components(str(model), PredictorConfig(), teacher, bank, with_selector=False)
    assert not parts.selector.fitted
