"""Metrics against hand-checked values."""

from __future__ import annotations

import numpy as np
import pytest

from celltext import metrics as M

SENT = "Backpropagation computes the gradient of the loss with respect to every weight."
OTHER = "A convolutional network slides learned filters over an image to detect local patterns."


def test_bleu_identical_is_one_and_disjoint_is_zero():
    assert M.bleu([SENT, OTHER], [SENT, OTHER]) == pytest.approx(1.0)
    assert M.bleu(["zebra quokka lemur"], [SENT]) == 0.0
    assert M.bleu([], []) == 0.0


def test_bleu_matches_sacrebleu_scaled():
    import sacrebleu

    hyps = ["the cat sat on the mat today", "a dog ran in the big park"]
    refs = ["the cat sat on a mat today", "the dog ran in the park"]
    expected = sacrebleu.corpus_bleu(hyps, [refs]).score / 100
    assert 0 < expected < 1
    assert M.bleu(hyps, refs) == pytest.approx(expected)


def test_bleu_length_mismatch_raises():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        M.bleu(["a", "b"], ["a"])


def test_chrf_and_rouge():
    assert M.chrf([SENT], [SENT]) == pytest.approx(1.0)
    assert 0 < M.chrf(["Backpropagation computes gradients."], [SENT]) < 1
    assert M.rouge_l([SENT], [SENT]) == pytest.approx(1.0)
    # Stemming: "cats are running" vs "cat is run" -> cat, run match; 2 of 3 tokens each side
    # after rouge_score's tokenizer: LCS = 2, P = R = 2/3.
    assert M.rouge_l(["the cats are running"], ["the cat is runs"]) == pytest.approx(0.75)
    np.testing.assert_allclose(M.rouge_l_scores(["a b", "c"], ["a b", "d"]), [1.0, 0.0])


@pytest.mark.parametrize(
    ("hyp", "ref", "match"),
    [
        ("Hello, World!", "hello world", True),
        ("  hello   world ", "Hello world.", True),
        ("hello-world", "hello world", True),
        ("hello world", "hello worlds", False),
        ("", "", True),
    ],
)
def test_exact_match_cases(hyp, ref, match):
    assert M.exact_match([hyp], [ref]) == float(match)


def test_exact_match_mean():
    assert M.exact_match(["a", "b", "c", "d"], ["A.", "x", "c", "D!"]) == pytest.approx(0.75)


def test_semantic_similarity_and_preservation(hash_teacher):
    assert M.semantic_similarity([SENT], [SENT], hash_teacher) == pytest.approx(1.0, abs=1e-6)
    sim = M.semantic_similarity([SENT, SENT], [SENT, OTHER], hash_teacher)
    assert sim < 0.8
    embs = hash_teacher.encode([SENT, OTHER])
    assert M.embedding_preservation([SENT, OTHER], embs, hash_teacher) == pytest.approx(1.0)
    assert M.embedding_preservation([OTHER, SENT], embs, hash_teacher) < 0.5
    # Unnormalised inputs are normalised first.
    assert M.embedding_preservation([SENT], 3 * embs[:1], hash_teacher) == pytest.approx(1.0)


def test_coherence_components(hash_teacher):
    q = "What does backpropagation compute?"
    good = "Backpropagation computes the gradient of the loss."
    res = M.coherence([q, q, q, q], [good, "the the the the the the", "", OTHER], hash_teacher)
    assert res.scores.shape == (4,)
    assert np.all((res.scores >= 0) & (res.scores <= 1))
    assert res.scores[0] > 0.9  # well formed, on topic, no repetition
    assert res.scores[1] < 0.1  # repeated word: degenerate
    assert res.scores[2] == 0.0  # empty
    assert 0.4 <= res.scores[3] <= 0.6  # well formed, off topic: about half
    assert res.mean == pytest.approx(res.scores.mean())
    assert set(res.summary()) == {"coherence", "repetition", "completeness", "on_topic"}


def test_repetition_and_completeness_hand_values():
    assert M.repetition_score("a b c d e") == 1.0
    # bigrams: ab ba ab ba ab -> 2 distinct of 5 -> dup 0.6
    assert M.repetition_score("a b a b a b") == pytest.approx(0.4)
    assert M.repetition_score("word word word word word") == 0.0
    assert M.completeness_score("This is complete.") == 1.0
    assert M.completeness_score("this is not complete") == pytest.approx(1 / 3)
    assert M.completeness_score("Yes.") == pytest.approx(2 / 3)


def test_unknown_token_rate():
    assert M.unknown_token_rate(["all fine here", "no unknowns"]) == 0.0
    assert M.unknown_token_rate(["a <unk> b c", "d"]) == pytest.approx(1 / 5)
    assert M.unknown_token_rate([]) == 0.0
    assert M.invalid_char_rate(["ab\ufffd", "c"]) == pytest.approx(1 / 4)
    assert M.invalid_char_rate(["clean"]) == 0.0


def test_unknown_token_rate_with_byte_level_tokenizer():
    from celltext.tokenizer import CellTokenizer

    tok = CellTokenizer.train(["some training text", "more text here"], vocab_size=300)
    assert M.unknown_token_rate(["unseen wörds 😀 and <unk>"], tok) > 0  # the literal marker
    assert M.unknown_token_rate(["unseen wörds 😀 ✓"], tok) == 0.0


def test_latency_summary():
    s = M.latency_summary(list(range(1, 101)))
    assert s["n"] == 100
    assert s["p50"] == pytest.approx(50.5)
    assert s["p95"] == pytest.approx(95.05)
    assert M.latency_summary([])["n"] == 0


def test_text_metrics_block(hash_teacher):
    out = M.text_metrics(["What is it?"], [SENT], [SENT], hash_teacher)
    assert out["bleu"] == pytest.approx(1.0)
    assert out["exact_match"] == 1.0
    assert out["unknown_token_rate"] == 0.0
    assert set(out) >= {"bleu", "chrf", "rouge_l", "semantic_similarity", "coherence"}
