"""The production predictor: answers, quality check, fallback under injected faults."""

from __future__ import annotations

import numpy as np
import pytest
from serving_tiny import PAIRS

from celltext.index import RetrievalIndex
from celltext.inference.factory import load_predictor
from celltext.inference.predictor import LAST_RESORT_ANSWER, Predictor
from celltext.inference.records import DimensionError, StageError
from celltext.paths import DEFAULT_RELEASE

QUESTIONS = [q for q, _ in PAIRS]
ANSWERS = [a for _, a in PAIRS]


def _boom(*_args, **_kwargs):
    raise RuntimeError("injected fault")


def test_answers_carry_provenance(predictor):
    rows = predictor.answer(QUESTIONS[:3])
    assert [r.question for r in rows] == QUESTIONS[:3]
    for row, expected in zip(rows, ANSWERS[:3], strict=True):
        assert row.answer == expected  # the fitted tiny model memorised its pairs
        assert row.fallback is False and row.fallback_reason is None
        assert 0.0 <= row.confidence <= 1.0 and row.confidence > 0.9
        assert row.latency_ms > 0
        assert row.model == "tiny-mlp-ret/0"
        assert row.generated == row.answer
        assert set(row.to_dict()) >= {"answer", "confidence", "fallback", "latency_ms", "model"}
    assert predictor.answer([]) == []


def test_low_confidence_falls_back_with_reason(predictor):
    strict = predictor.config.replace(quality={"threshold": 1.0})
    (row,) = predictor.answer(["What does SGD stand for?"], strict)
    assert row.fallback is True
    assert row.fallback_reason.startswith("low_confidence")
    assert row.answer == "SGD stands for stochastic gradient descent."  # nearest train question
    assert row.generated is not None and row.model_confidence is not None
    assert row.model.endswith("+fallback")


def test_empty_generation_falls_back(predictor, monkeypatch):
    monkeypatch.setattr(predictor.decoding, "generate", lambda embs, options: ["  "] * len(embs))
    (row,) = predictor.answer([QUESTIONS[0]])
    assert row.fallback and row.fallback_reason == "empty_answer"


@pytest.mark.parametrize("stage", ["teacher", "core", "decoder", "quality"])
def test_any_failing_stage_falls_back(predictor, monkeypatch, stage):
    from celltext.inference.quality import QualityAssessor

    targets = {
        "teacher": (predictor.teacher, "encode"),
        "core": (predictor.backend, "core"),
        "decoder": (predictor.backend, "generate"),
        "quality": (QualityAssessor, "assess"),
    }
    obj, name = targets[stage]
    monkeypatch.setattr(obj, name, _boom)
    rows = predictor.answer(QUESTIONS[:4] + ["completely unrelated text about cooking"])
    assert len(rows) == 5
    for row in rows:
        assert row.fallback is True
        assert row.fallback_reason.startswith(f"{stage}_error: RuntimeError: injected fault")
        assert 0.0 <= row.confidence <= 1.0
    # even without the teacher, the lexical look-up finds the known questions
    assert [r.answer for r in rows[:4]] == ANSWERS[:4]


def test_without_fallback_a_failing_stage_raises(predictor, monkeypatch):
    monkeypatch.setattr(predictor.backend, "generate", _boom)
    with pytest.raises(StageError, match="decoder failed"):
        predictor.with_config(fallback={"enabled": False}).answer([QUESTIONS[0]])
    assert predictor.answer([QUESTIONS[0]])[0].fallback  # the shared predictor is unchanged


def test_without_fallback_low_quality_is_returned(predictor):
    config = predictor.config.replace(fallback={"enabled": False}, quality={"threshold": 1.0})
    (row,) = predictor.answer([QUESTIONS[1]], config)
    assert row.fallback is False and row.fallback_reason is None
    assert row.answer == ANSWERS[1]


def test_broken_bank_gives_last_resort_answer(predictor, monkeypatch):
    monkeypatch.setattr(predictor.backend, "core", _boom)
    monkeypatch.setattr(predictor.bank, "by_question", _boom)
    (row,) = predictor.answer([QUESTIONS[0]])
    assert row.fallback and row.answer == LAST_RESORT_ANSWER and row.confidence == 0.0


def test_timeout_answers_use_no_model(predictor, monkeypatch):
    monkeypatch.setattr(predictor.teacher, "encode", _boom)
    rows = predictor.timeout_answers([QUESTIONS[2]], 1.5)
    assert rows[0].fallback and rows[0].fallback_reason == "timeout: no answer within 1.5 s"
    assert rows[0].answer == ANSWERS[2]
    no_fallback = predictor.with_config(fallback={"enabled": False})
    assert no_fallback.timeout_answers([QUESTIONS[2]], 1.5) is None


def test_retrieval_mode(retrieval):
    assert retrieval.retrieval_only and retrieval.info.label == f"retrieval/{DEFAULT_RELEASE}"
    rows = retrieval.answer(["Which city is the capital of France?"])
    assert rows[0].answer == "Paris is the capital of France."
    assert rows[0].fallback is False and rows[0].confidence > 0.5
    decoded = retrieval.decode(retrieval.embed([ANSWERS[3]]))
    assert decoded[0].text == ANSWERS[3]


def test_decode_checks_dimension(predictor, teacher):
    embs = teacher.encode(ANSWERS[:2])
    decoded = predictor.decode(embs)
    assert [d.text for d in decoded] == ANSWERS[:2]
    assert all(d.similarity > 0.9 for d in decoded)
    assert predictor.decode(embs[0])[0].text == ANSWERS[0]  # a single (D,) vector
    with pytest.raises(
        DimensionError, match=r"expected embeddings of shape \(N, 384\).*got shape \(2, 100\)"
    ):
        predictor.decode(np.zeros((2, 100), dtype=np.float32))
    with pytest.raises(DimensionError, match="NaN"):
        predictor.decode(np.full((1, 384), np.nan, dtype=np.float32))


def test_embed(predictor):
    vecs = predictor.embed(["a", "b c"])
    assert vecs.shape == (2, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_activity(lattice_ckpt, predictor, teacher, bank):
    lattice = load_predictor(str(lattice_ckpt), teacher=teacher, bank=bank)
    act = lattice.activity("What is a lattice?")
    assert act["shape"] == [3, 3, 2]
    values = np.array(act["values"])
    assert values.shape == (3, 3, 2) and values.min() >= 0 and values.max() == pytest.approx(1.0)
    assert predictor.activity("What is a lattice?") is None  # mlp core: no lattice


def test_model_info(predictor):
    info = predictor.info.to_dict()
    assert info["core"] == "mlp_v1" and info["decoder"] == "ret_v1"
    assert info["teacher_id"] == "all-MiniLM-L6-v2" and info["dim"] == 384
    assert info["label"] == "tiny-mlp-ret/0"


def _with_subject_bank(predictor, teacher):
    """The test predictor over a bank of PAIRS with subjects, and those pairs as release
    pairs (four times: enough re-asked questions to calibrate on)."""
    from types import SimpleNamespace

    subjects = ["backpropagation", "neural network", "SGD", "overfitting", "tokenizer",
                "France", "reinforcement learning", "convolution"]  # fmt: skip
    bank = RetrievalIndex.from_pairs(QUESTIONS, ANSWERS, teacher, subjects=subjects)
    predictor = Predictor(predictor.teacher, predictor.backend, bank, info=predictor.info)
    pairs = [
        SimpleNamespace(question=q, answer=a, subject=s, template_id="definition_noun_q1")
        for q, a, s in zip(QUESTIONS, ANSWERS, subjects, strict=True)
    ] * 4
    return predictor, pairs


def test_fitted_selector_chooses_calibrates_and_abstains(predictor, teacher):
    from celltext.inference.calibrate import calibrate

    predictor, pairs = _with_subject_bank(predictor, teacher)
    selector, report = calibrate(predictor, pairs, pairs[:8], n_seen=32, n_val=8)
    assert selector.fitted and 0.0 <= report["ece"] <= 1.0
    assert report["questions"]["seen"] > 0 and report["questions"]["val"] == 8
    assert predictor.config.decoding.rerank.candidates == 0  # unchanged
    predictor.selector = selector
    rows = predictor.answer(QUESTIONS[:3] + ["What is the meaning of blorfquux?"])
    for row, expected in zip(rows[:3], ANSWERS[:3], strict=True):
        assert row.best_guess == expected
        assert row.provenance in ("retrieved", "generated", "abstained")
        assert 0.0 <= row.confidence <= 1.0
    assert rows[3].confidence < max(r.confidence for r in rows[:3])
    predictor.selector.abstain_below = 1.0
    (row,) = predictor.answer(QUESTIONS[:1])
    assert row.abstained and row.provenance == "abstained" and row.answer != row.best_guess


def test_threshold_on_natural_rows_keeps_served_risk_under_the_bound(predictor, teacher):
    from celltext.data.heldout import HeldoutPair
    from celltext.inference.calibrate import calibrate, threshold_on_natural

    predictor, pairs = _with_subject_bank(predictor, teacher)
    selector, _ = calibrate(predictor, pairs, pairs[:8], n_seen=32, n_val=8, typed_rate=0.5)
    rows = [HeldoutPair(str(i), q.lower().rstrip("?"), a, "d") for i, (q, a) in
            enumerate(zip(QUESTIONS, ANSWERS, strict=True))]  # fmt: skip
    rows += [
        HeldoutPair(u, q, "", "out_of_scope", answerable=False)
        for u, q in (("u1", "who invented the blorfquux"), ("u2", "zzkq vrrm plonk"))
    ]
    for bound in (0.0, 0.5):
        threshold, report = threshold_on_natural(predictor, selector, rows, bound)
        assert 0.0 <= threshold <= 1.0 and report["abstain_below"] == threshold
        assert report["risk"] <= bound and report["questions"] == len(rows)
        assert report["risk_coverage"][0]["coverage"] == 1.0  # threshold 0 serves everything
    assert predictor.selector is None or not predictor.selector.fitted  # left as it was


def test_typing_errors_are_read_corrected_and_the_answer_keeps_the_typed_question(
    predictor, teacher
):
    bank = RetrievalIndex.from_pairs(QUESTIONS, ANSWERS, teacher)
    served = Predictor(predictor.teacher, predictor.backend, bank, info=predictor.info)
    typed = "What is backpropogation?"  # one letter off a bank word
    assert served.read([typed]) == ["What is backpropagation?"]
    plain = served.config.replace(bank={"spelling": False})
    assert served.read([typed], plain) == [typed]
    (row,) = served.answer([typed])
    assert row.question == typed


def test_rerank_picks_the_candidate_closest_to_the_embedding(predictor, monkeypatch):
    decode = predictor.decoding.tokens_to_texts

    def worse_greedy(embs, generation, protos=None, seed=0):
        if not generation.do_sample:
            return ["Bananas are yellow fruit."] * len(embs)
        return decode(embs, generation.replace(do_sample=False))  # the "samples": true answers

    monkeypatch.setattr(predictor.decoding, "tokens_to_texts", worse_greedy)
    reranked = predictor.config.replace(decoding={"rerank": {"candidates": 3}})
    assert [r.answer for r in predictor.answer(QUESTIONS[:3], reranked)] == ANSWERS[:3]
    assert predictor.answer(QUESTIONS[:1])[0].generated == "Bananas are yellow fruit."


def test_degenerate_text_loses_its_confidence_and_falls_back(predictor, monkeypatch):
    from celltext.inference.quality import degeneration_factor

    assert degeneration_factor("RAM is the main memory of a computer.") == 1.0
    assert degeneration_factor("Screen is the memory of memory memory memory memory") == 0.0
    assert 0.0 < degeneration_factor("the cat and the cat and the dog") < 1.0
    monkeypatch.setattr(
        predictor.decoding, "generate", lambda *a, **k: ["Screen is memory memory memory memory"]
    )
    (row,) = predictor.answer(["What is RAM?"])
    assert row.fallback and row.fallback_reason.startswith("low_confidence")
    assert row.model_confidence == 0.0


def test_search_keeps_the_candidate_closest_to_the_embedding(teacher, bank, tmp_path):
    """``decode(mode="search")``: per row the best by teacher cosine of the plain decode,
    the k nearest phrase-bank texts and their edits; more prototypes never lower it."""
    import numpy as np
    from serving_tiny import tiny_checkpoint

    from celltext.inference.factory import load_predictor

    ckpt = tiny_checkpoint(tmp_path / "edit", "mlp", "ret_edit")
    pred = load_predictor(str(ckpt), teacher=teacher, bank=bank)
    embs = bank.answer_embs[:4] * 0.8 + bank.answer_embs[4:8] * 0.2  # between two answers
    one = pred.decode(embs, "search")
    three = pred.decode(embs, "search", pred.config.replace(decoding={"search": {"prototypes": 3}}))
    hits = bank.search(embs, k=3)
    for i, row in enumerate(three):
        assert row.similarity >= one[i].similarity - 1e-6
        for text in [h.text for h in hits[i]] + [one[i].text]:
            cos = float(pred.embed([text])[0] @ embs[i] / np.linalg.norm(embs[i]))
            assert row.similarity >= cos - 1e-5, (text, row)


def test_correction_steps_edit_the_best_text_and_never_lower_it(teacher, bank, tmp_path):
    """``correction_steps``: each round edits the best text so far toward the embedding
    and keeps the edit only where the teacher finds it closer."""
    from serving_tiny import tiny_checkpoint

    from celltext.inference.factory import load_predictor

    ckpt = tiny_checkpoint(tmp_path / "edit", "mlp", "ret_edit")
    pred = load_predictor(str(ckpt), teacher=teacher, bank=bank)
    embs = bank.answer_embs[:4] * 0.8 + bank.answer_embs[4:8] * 0.2
    before = pred.decode(embs, "search")
    seen = []
    generate = pred.decoding.generate

    def spy(e, options, protos=None):
        seen.append(None if protos is None else list(protos))
        return generate(e, options, protos)

    pred.decoding.generate = spy
    after = pred.decode(
        embs, "search", pred.config.replace(decoding={"search": {"correction_steps": 2}})
    )
    assert len(seen) == 3  # the first edit, then one per correction step
    assert seen[1] == [b.text for b in before]  # round 1 edits the previous best
    for b, a in zip(before, after, strict=True):
        assert a.similarity >= b.similarity - 1e-6


def test_the_same_direction_decodes_to_the_same_text(predictor, teacher):
    """Hardening item 8: a vector and any positive multiple of it (doubled, 1e20 times,
    near float32's largest value) decode to the same text with the same preservation."""
    emb = teacher.encode(ANSWERS[:3])  # (3, D) unit rows
    base = predictor.decode(emb)
    for scale in (2.0, 1e-3, 1e20):
        scaled = predictor.decode((emb * np.float32(scale)).astype(np.float32))
        assert [d.text for d in scaled] == [d.text for d in base], scale
        for a, b in zip(scaled, base, strict=True):
            assert a.similarity == pytest.approx(b.similarity, abs=1e-5)
    huge = emb / np.abs(emb).max(axis=1, keepdims=True) * np.float32(3e38)  # no overflow
    assert [d.text for d in predictor.decode(huge.astype(np.float32))] == [d.text for d in base]
    assert predictor.decode_texts(emb * 4.0) == [d.text for d in base]
    with pytest.raises(DimensionError, match="all zeros"):
        predictor.decode(np.zeros((1, 384), dtype=np.float32))
    with pytest.raises(DimensionError, match="complex"):
        predictor.decode(emb.astype(np.complex64))
