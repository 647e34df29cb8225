"""The answer grammar checker (``celltext.data.grammar``): each rule on positive and negative
examples, the report, the CLI command, and agreement with the hand-labelled v1 sample."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from celltext.cli import app
from celltext.data.grammar import (
    CODES,
    article_for,
    check_answer,
    check_pairs,
    release_lexicon,
    review_sample,
)
from celltext.data.release import load_release, write_release
from celltext.data.wordlists import load_lexicon

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "review" / "grammar_sample_v1.csv"
RUBRIC = ROOT / "data" / "review" / "GRAMMAR_RUBRIC.md"


def codes(answer: str, subject: str | None = None, qtype: str | None = "definition") -> set:
    return {p.code for p in check_answer(answer, subject, qtype)}


# The bad v1 answers users saw (issue "Release v2"), with the code each must get.
BAD_V1 = [
    (
        "A gradient descent is an optimisation method that follows the gradient.",
        "gradient descent",
        "article_before_method",
    ),
    (
        "A dropout is a regularisation technique that zeroes activations.",
        "dropout",
        "article_before_method",
    ),
    (
        "A reinforcement learning is an area of machine learning in which an agent acts.",
        "reinforcement learning",
        "article_before_field",
    ),
    ("An entropy is a measure of the disorder of a system.", "entropy", "article_before_mass_noun"),
    (
        "A k-means is a clustering algorithm that assigns points to centroids.",
        "k-means",
        "article_before_method",
    ),
    (
        "A recursion is a method of defining a function in terms of itself.",
        "recursion",
        "article_before_method",
    ),
    ("An oxygen is a colourless, odourless gaseous element.", "oxygen", "article_before_mass_noun"),
    (
        "A batch normalisation is a layer that normalises activations.",
        "batch normalisation",
        "article_before_method",
    ),
    (
        "A cross-validation is a way of estimating generalisation error.",
        "cross-validation",
        "article_before_method",
    ),
    ("A k-means is a kind of clustering algorithm.", "k-means", "article_before_method"),
]


@pytest.mark.parametrize(("answer", "subject", "code"), BAD_V1)
def test_bad_v1_answers_are_flagged(answer, subject, code):
    assert codes(answer, subject) == {code}
    assert codes(answer) == {code}  # without the subject: read from the answer


@pytest.mark.parametrize(
    ("answer", "subject"),
    [
        (
            "Gradient descent is an optimisation method that follows the gradient.",
            "gradient descent",
        ),
        ("Reinforcement learning is an area of machine learning.", "reinforcement learning"),
        ("Oxygen is a colourless, odourless gaseous element.", "oxygen"),
        ("K-means is a clustering algorithm.", "k-means"),
        ("A decision tree is a model that predicts by following feature tests.", "decision tree"),
        ("A function is a rule that maps inputs to outputs.", "function"),
        ("An algorithm is a precise rule for solving a problem.", "algorithm"),
        ("A convolution is an operation that slides a kernel over an input.", "convolution"),
        ("A heuristic is a rule of thumb that guides search.", "heuristic"),
        ("Feature maps are the outputs of a convolutional layer.", "feature maps"),
        ("A happening is a kind of event.", "happening"),
        ("A building is a structure with a roof and walls.", "building"),
        ("Python is a programming language.", "Python"),
        ("A CNN is a neural network with convolutional layers.", "CNN"),
        ("To run means to move fast on foot.", "run"),
        ("Distro is another name for distribution.", "distro"),
        ("Software is written programs or procedures.", "software"),
        ("In text generation, temperature is a number that divides the logits.", "temperature"),
    ],
)
def test_good_answers_are_not_flagged(answer, subject):
    assert codes(answer, subject) == set()


@pytest.mark.parametrize(
    ("answer", "subject", "qtype", "code"),
    [
        ("Hound is a kind of hunting dog.", "hound", "kind_of", "missing_article"),
        ("Sister is also called sis.", "sister", "other_name", "missing_article"),
        ("DIP switch is a kind of toggle switch.", "DIP switch", "kind_of", "missing_article"),
        (
            "An awk is an interpreted language for text.",
            "awk",
            "definition",
            "article_before_proper_name",
        ),
        (
            "A cppp is a compiler front-end for C++.",
            "cppp",
            "definition",
            "article_before_proper_name",
        ),
        (
            "A convert.f90 is a Fortran 77 to Fortran 90 translator.",
            "convert.f90",
            "definition",
            "article_before_proper_name",
        ),
        (
            "A (TM) is an ASCII rendition of the trademark symbol.",
            "(TM)",
            "definition",
            "article_before_non_noun",
        ),
        (
            "An admissible is a description of a search algorithm.",
            "admissible",
            "definition",
            "article_before_non_noun",
        ),
        ("An indices is a plural of index.", "indices", "definition", "article_before_plural"),
        (
            "An NLP is a field of artificial intelligence.",
            "NLP",
            "definition",
            "article_before_acronym",
        ),
        (
            "A baseball is a ball game played with a bat.",
            "baseball",
            "definition",
            "article_before_mass_noun",
        ),
        (
            "A hill climbing is a graph search algorithm.",
            "hill climbing",
            "definition",
            "article_before_method",
        ),
        (
            "A statistics is a kind of applied mathematics.",
            "statistics",
            "kind_of",
            "article_before_field",
        ),
        (
            "Feature maps is the output of a convolutional layer.",
            "feature maps",
            "definition",
            "plural_subject_singular_verb",
        ),
        (
            "A feature map are the output of a convolutional layer.",
            "feature map",
            "definition",
            "singular_subject_plural_verb",
        ),
    ],
)
def test_each_rule_flags_its_example(answer, subject, qtype, code):
    assert codes(answer, subject, qtype) == {code}


@pytest.mark.parametrize(
    ("answer", "subject", "qtype"),
    [
        ("Oxygen is also called O.", "oxygen", "other_name"),  # mass: no article missing
        ("Texas is the second largest state.", "Texas", "definition"),  # a name
        ("Backpropagation is a kind of algorithm.", "backpropagation", "kind_of"),
        ("Consideration is the process of giving careful thought.", "consideration", "definition"),
        ("A blitter is a special-purpose chip.", "blitter", "definition"),
        ("A mundane is someone outside some group.", "mundane", "definition"),
        ("A linter is a tool that analyses source code.", "linter", "definition"),
        ("Bits per second is a unit of data rate.", "bits per second", "definition"),
        ("United States is part of North America.", "United States", "part_of"),
        ("ZPL stands for Zope Public License.", "ZPL", "acronym"),
        ("The term hit is used in baseball.", "hit", "field"),
    ],
)
def test_rules_leave_these_alone(answer, subject, qtype):
    assert codes(answer, subject, qtype) == set()


def test_acronym_with_a_mass_expansion_from_the_release():
    lex = replace(load_lexicon(), expansions={"XDP": "cross-validation"})
    answer = "An XDP is a way of estimating generalisation error."
    assert {p.code for p in check_answer(answer, "XDP", "definition", lex)} == {
        "article_before_acronym"
    }
    assert check_answer(answer, "XDP", "definition") == []  # no expansion known: left alone


@pytest.mark.parametrize(
    ("word", "article"),
    [
        ("hour", "an"),
        ("honest", "an"),
        ("user", "a"),
        ("unique", "a"),
        ("uninstaller", "an"),
        ("SVM", "an"),
        ("one-hot", "a"),
        ("LSTM", "an"),
        ("URL", "a"),
        ("MLP", "an"),
        ("FPGA", "an"),
        ("GPU", "a"),
        ("HTTP", "an"),
        ("NASA", "a"),
        ("algorithm", "an"),
        ("k-means", "a"),
        ("n-gram", "an"),
        ("x-axis", "an"),
        ("8-bit", "an"),
        ("11", "an"),
        ("100", "a"),
        ("European", "a"),
        ("Euler", "an"),
        ("ndarray", "an"),
        ("lp", "an"),
        ("myth", "a"),
        ("mnemonic", "a"),
        ("Unix", "a"),
        ("SHell", "a"),
        ("(n,", None),
        ("SQL", None),
        ("herb", None),
        ("MUD", None),
        ("x", None),
        ("0800", None),
    ],
)
def test_article_for_by_sound(word, article):
    assert article_for(word) == article


@pytest.mark.parametrize(
    ("answer", "fixes"),
    [
        ("Sorting is done by a algorithm.", {"a algorithm"}),
        ("It asks an user and an hour later a SVM.", {"an user", "a SVM"}),
        ("A uninstaller removes a program.", {"A uninstaller"}),
    ],
)
def test_wrong_indefinite_articles_anywhere(answer, fixes):
    problems = check_answer(answer, qtype="function")
    assert {p.code for p in problems} == {"wrong_indefinite_article"}
    assert {p.message.split('"')[1] for p in problems} == fixes


@pytest.mark.parametrize(
    "answer",
    [
        "It uses an hour, a user, an SVM, a one-hot vector, an LSTM, a URL and an MLP.",
        "Vitamin A is a nutrient and type A blood is common.",
        "The function solves a x = b for x and returns a (n, 4) array.",
    ],
)
def test_right_indefinite_articles_pass(answer):
    assert check_answer(answer, qtype="function") == []


def test_check_pairs_report():
    pairs = [
        SimpleNamespace(id=f"p{i}", answer=a, subject=s, qtype=q, source=src)
        for i, (a, s, q, src) in enumerate(
            [
                ("A dropout is a regularisation technique.", "dropout", "definition", "g"),
                (
                    "A gradient descent is a kind of optimisation algorithm.",
                    "gradient descent",
                    "kind_of",
                    "g",
                ),
                ("An oxygen is a gaseous element.", "oxygen", "definition", "e"),
                ("A decision tree is a kind of model.", "decision tree", "kind_of", "g"),
                ("NLP stands for natural language processing.", "NLP", "acronym", "v"),
            ]
        )
    ]
    report = check_pairs(pairs, examples=1)
    assert report["checked"] == 5 and report["flagged"] == 3 and report["problems"] == 3
    assert report["per_code"] == {"article_before_method": 2, "article_before_mass_noun": 1}
    assert report["per_code_source"]["article_before_method"] == {"g": 2}
    assert [e["id"] for e in report["examples"]["article_before_method"]] == ["p0"]
    assert release_lexicon(pairs).expansions == {"NLP": "natural language processing"}


def test_grammar_command(tmp_path, tiny_pairs):
    bad = replace(tiny_pairs[0], answer="An oxygen is a gaseous element.", subject="oxygen")
    path = write_release([bad, *tiny_pairs[1:]], tmp_path / "v0", "v0")
    runner = CliRunner()
    res = runner.invoke(app, ["data", "grammar", "--release", str(path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["release"] == "v0" and out["checked"] == 5
    assert out["per_code"] == {"article_before_mass_noun": 1}
    text = runner.invoke(app, ["data", "grammar", "--release", str(path)])
    assert text.exit_code == 0 and "article_before_mass_noun" in text.output


# --- the hand-labelled sample -------------------------------------------------------------

# Measured on 2026-11-24 (see the rubric): all 480 rows precision 70/71 = 0.986, recall
# 70/91 = 0.769; the 160 held-out rows 17/17 = 1.0 and 17/26 = 0.654. The thresholds sit
# just under these numbers: a change that costs a flag or adds a false one shows here.
THRESHOLDS = {"all": (0.97, 0.75), "held_out": (0.94, 0.61)}


@pytest.fixture(scope="module")
def labelled():
    rows = list(csv.DictReader(SAMPLE.open(encoding="utf-8")))
    pairs = load_release("v1").pairs()
    by_id = {p.id: p for p in pairs}
    return rows, by_id, release_lexicon(pairs)


def test_sample_is_the_documented_draws(labelled):
    rows, by_id, _ = labelled
    train = [p for p in by_id.values() if p.split == "train"]
    dev = review_sample(train)
    held = review_sample(train, "held_out", exclude={p.id for p in dev})
    assert [r["id"] for r in rows] == [p.id for p in dev + held]
    assert all(r["answer"] == by_id[r["id"]].answer for r in rows)
    labels = {code for r in rows for code in r["label"].split(";")}
    assert labels <= set(CODES) | {"ok"}
    rubric = RUBRIC.read_text(encoding="utf-8")
    assert all(f"`{code}`" in rubric for code in CODES)


def _scores(rows, by_id, lex) -> tuple[float, float, float]:
    tp = fp = fn = agree = 0
    for r in rows:
        pair = by_id[r["id"]]
        found = {p.code for p in check_answer(pair.answer, pair.subject, pair.qtype, lex)}
        labelled_bad = r["label"] != "ok"
        tp += bool(found) and labelled_bad
        fp += bool(found) and not labelled_bad
        fn += not found and labelled_bad
        agree += bool(found & set(r["label"].split(";")))
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), agree / max(tp, 1)


@pytest.mark.parametrize("part", ["all", "held_out"])
def test_checker_against_hand_labels(labelled, part):
    rows, by_id, lex = labelled
    rows = rows if part == "all" else rows[320:]
    precision, recall, agree = _scores(rows, by_id, lex)
    print(f"{part}: precision {precision:.3f} recall {recall:.3f} code agreement {agree:.3f}")
    min_precision, min_recall = THRESHOLDS[part]
    assert precision >= min_precision and recall >= min_recall, (precision, recall)
    assert agree >= 0.9  # a flagged, labelled problem gets the labelled code
