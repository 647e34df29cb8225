"""Quality checks: well-formedness, complexity, exact and near duplicates, coherence."""

from __future__ import annotations

import numpy as np

from celltext.data import quality
from celltext.data.schema import Fact


def _fact(answer, subject="thing", qtype="definition"):
    return Fact(subject, qtype, answer, "general_knowledge", "test")


def test_well_formed_reasons():
    assert quality.well_formed(_fact("A thing is a small object.")) is None
    assert quality.well_formed(_fact("Too short.")) == "answer_too_short"
    assert quality.well_formed(_fact("a thing is lower case start.")) == "not_a_sentence"
    assert quality.well_formed(_fact("A thing is {braced} markup here.")) == "markup_left"
    assert quality.well_formed(_fact("A thing " + "word " * 80 + "end.")) == "answer_too_long"
    assert quality.well_formed(_fact("A thing is very shit indeed.")) == "offensive"


def test_complexity_orders_simple_below_complex():
    simple = quality.complexity("A cat is a small animal.")
    hard = quality.complexity(
        "Backpropagation computes gradients of a differentiable objective, which, through "
        "reverse-mode automatic differentiation, propagates sensitivities layerwise."
    )
    assert 0.0 <= simple < hard <= 1.0


def test_exact_duplicates_by_question_and_answer():
    facts = [
        _fact("A cat is a small animal.", "cat"),
        _fact("A cat is a small animal.", "Cat"),  # same question after normalising
        _fact("A dog is a loyal animal.", "dog"),
        Fact("kitty", "definition", "Kitty is x.", "general_knowledge", "t", core="a small animal"),
        Fact(
            "moggy", "definition", "Moggy is x.", "general_knowledge", "t", core="A small animal."
        ),
    ]
    dropped = quality.exact_duplicates(facts, lambda f: f"What is {f.subject}?")
    assert dropped == [1, 4]


def test_near_duplicates_only_across_subjects():
    base = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    close = np.array([0.999, 0.04, 0.0], dtype=np.float32)
    far = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    vecs = np.stack([base, close / np.linalg.norm(close), far, base])
    dropped = quality.near_duplicates(vecs, ["a", "b", "c", "a"], threshold=0.97)
    assert dropped == [1]  # index 3 is the same subject as 0, so it is kept


def test_coherence_is_rowwise_cosine():
    a = np.eye(3, dtype=np.float32)
    b = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    np.testing.assert_allclose(quality.coherence(a, b), [1.0, 0.0, 1.0])
    assert quality.summarise([0.0, 1.0])["mean"] == 0.5
    assert quality.summarise([])["mean"] == 0.0
