"""The build's grammar gate: each problem code's repair, and what it refuses."""

from collections import Counter

import pytest

from celltext.data.grammar import check_answer, release_lexicon
from celltext.data.grammar_gate import gate_facts, repair_answer
from celltext.data.schema import Fact


@pytest.mark.parametrize(
    ("answer", "subject", "qtype", "want"),
    [
        ("A gradient descent is an optimisation method.", "gradient descent", "definition",
         "Gradient descent is an optimisation method."),
        ("In machine learning, a dropout is a regularisation technique.", "dropout",
         "definition", "In machine learning, dropout is a regularisation technique."),
        ("Necktie is also called tie.", "necktie", "other_name", "A necktie is also called tie."),
        ("Graphic ALGOL is a extension of ALGOL 60.", "Graphic ALGOL", "definition",
         "Graphic ALGOL is an extension of ALGOL 60."),
        ("Odds and ends is also called oddments.", "odds and ends", "other_name",
         "Odds and ends are also called oddments."),
    ],
)  # fmt: skip
def test_each_code_is_repaired(answer, subject, qtype, want):
    assert check_answer(answer, subject, qtype), "the example must be flagged to begin with"
    fixed, problems = repair_answer(answer, subject, qtype)
    assert fixed == want
    assert problems and not check_answer(fixed, subject, qtype)


def test_a_clean_answer_is_kept_as_it_is():
    answer = "Gradient descent is an optimisation method."
    assert repair_answer(answer, "gradient descent", "definition") == (answer, [])


def test_a_declared_noun_kind_is_believed():
    lex = release_lexicon([], declared={"pip": "proper"})
    answer = "In MLOps, pip is the standard package installer for Python."
    assert repair_answer(answer, "pip", "definition", lex) == (answer, [])
    fixed, _ = repair_answer("A pip is the package installer.", "pip", "definition", lex)
    assert fixed == "Pip is the package installer."


def test_a_name_written_in_capitals_is_not_given_an_article():
    answer = "Musical Instrument Digital Interface is a hardware specification."
    fixed, problems = repair_answer(answer, "musical instrument digital interface", "definition")
    assert fixed in (None, answer)  # dropped if flagged; never "A musical Instrument ..."


def test_gate_counts_repairs_and_drops():
    facts = [
        Fact("gradient descent", "definition", "A gradient descent is an optimisation method.",
             "ai_ml_fundamentals", "glossary"),
        Fact("necktie", "other_name", "Necktie is also called tie.", "general_knowledge",
             "wordnet"),
        Fact("backpropagation", "definition", "Backpropagation is how gradients are computed.",
             "deep_learning", "glossary"),
    ]  # fmt: skip
    dropped: Counter = Counter()
    kept, report = gate_facts(facts, dropped)
    assert [f.answer for f in kept] == [
        "Gradient descent is an optimisation method.",
        "A necktie is also called tie.",
        "Backpropagation is how gradients are computed.",
    ]
    assert report["checked"] == 3 and report["repaired"] == 2 and report["dropped"] == 0
    assert kept[1].core == "A necktie is also called tie."  # a core equal to the answer follows it
    assert not dropped
