"""Cleaning dictd markup and writing answers."""

from __future__ import annotations

from celltext.data.clean import (
    first_sentences,
    normalise_for_match,
    split_sentences,
    strip_markup,
    token_count,
)
from celltext.data.phrasing import a_or_an, define, third_person
from celltext.data.sources.docstrings import clean_docstring, describe


def test_strip_markup_removes_braces_tags_urls_and_dates():
    raw = (
        "<artificial intelligence> A {knowledge base} of {rules}. {Home page "
        "(http://example.org/)}. See www.example.com. [Details?] (1995-04-16)"
    )
    clean = strip_markup(raw)
    assert clean.startswith("A knowledge base of rules.")
    for bad in ("{", "}", "<", "http", "www", "[", "1995"):
        assert bad not in clean


def test_sentences_do_not_break_at_abbreviations():
    text = "It sorts numbers, e.g. integers. It is fast, i.e. O(n log n). Dr. Hoare wrote it."
    assert split_sentences(text) == [
        "It sorts numbers, e.g. integers.",
        "It is fast, i.e. O(n log n).",
        "Dr. Hoare wrote it.",
    ]


def test_first_sentences_respects_token_budget():
    long = "A word. " + " ".join(["Another very long sentence"] * 30) + "."
    assert first_sentences(long) == "A word."
    assert token_count("a short text") < 10


def test_define_articles_and_verbs():
    assert define("algorithm", "a precise rule for solving a problem") == (
        "An algorithm is a precise rule for solving a problem."
    )
    assert define("backpropagation", "the computation of gradients").startswith(
        "Backpropagation is the"
    )
    assert define("run", "to move fast", verb="means") == "Run means to move fast."
    assert a_or_an("hour") == "an" and a_or_an("LSTM") == "an" and a_or_an("GPU") == "a"
    assert third_person("apply") == "applies" and third_person("pass") == "passes"


def test_docstring_answers():
    doc = "relu(input) -> Tensor\n\nApplies the rectified linear unit function element-wise.\n"
    first = clean_docstring(doc)
    assert first == "Applies the rectified linear unit function element-wise."
    assert describe("torch.relu", first) == (
        "The function torch.relu applies the rectified linear unit function element-wise."
    )
    assert describe("math.gcd", "Return the greatest common divisor.").startswith(
        "The function math.gcd returns"
    )
    assert clean_docstring("See :func:`foo` and ``bar``.") == "See foo and bar."


def test_normalise_for_match():
    assert normalise_for_match("What is  an ALGORITHM?") == "what is an algorithm"
