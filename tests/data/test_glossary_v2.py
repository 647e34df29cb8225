"""The glossary's ``noun`` key, its sub-folders (release v2) and their collisions."""

from __future__ import annotations

from collections import Counter

import pytest

from celltext.data import quality
from celltext.data.phrasing import NOUN_KINDS, cannot_open, noun_phrase, sentence_head
from celltext.data.sources.base import SkipLog
from celltext.data.sources.glossary import GlossarySource

TOP = """\
domain: ai_ml_fundamentals
entries:
  - term: gradient descent
    def: an optimisation method that follows the negative gradient.
    kind: optimisation algorithm
  - term: mean average precision
    def: the mean over classes of the average precision of a detector.
    kind: evaluation metric
    acronym: mAP
  - term: masked autoencoder
    def: an autoencoder trained to reconstruct masked patches of its input.
    kind: self-supervised model
    acronym: MAE
"""
LATER = """\
domain: nlp_llm
entries:
  - term: feature maps
    noun: plural
    def: the outputs of a convolutional layer, one two-dimensional map per channel.
    kind: tensor
    use: to locate features in an image
    part: convolutional neural network
  - term: central limit theorem
    noun: definite
    def: the result that the mean of many independent samples tends to a normal distribution.
    kind: theorem
  - term: spaCy
    noun: proper
    def: an open-source Python library for industrial natural language processing.
    kind: software library
    aka: [spacy library]
    use: for building production pipelines
    example: A spaCy pipeline tags and parses a document in one call.
  - term: 3D reconstruction
    noun: mass
    def: the recovery of the shape of objects from several images.
    kind: computer vision task
  - term: BERT
    noun: proper
    def: a transformer encoder pre-trained with masked language modelling.
    kind: language model
  - term: MLOps maturity model
    noun: count
    def: a staged description of how automated an organisation's machine learning is.
    kind: assessment framework
  - term: mean absolute error
    noun: mass
    def: the average absolute difference between predictions and targets.
    kind: regression metric
    acronym: MAE
  - term: maximum a posteriori estimation
    noun: mass
    def: estimation of parameters by maximising their posterior probability.
    kind: estimation method
    acronym: MAP
  - term: Gradient Descent
    noun: mass
    def: a repeat of a top-level term.
  - term: no noun here
    def: an entry in a later folder must say how its term is used.
  - term: odd noun
    noun: collective
    def: an entry with a noun kind that does not exist.
"""


@pytest.fixture()
def glossary(tmp_path):
    (tmp_path / "ml.yaml").write_text(TOP)
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "nlp.yaml").write_text(LATER)
    return tmp_path


def _facts(directory, subdirs=("v2",), **kw):
    skips = SkipLog()
    facts = {(f.qtype, f.subject): f for f in GlossarySource(directory, subdirs, **kw).facts(skips)}
    return facts, skips


def test_noun_phrases():
    assert noun_phrase("replay buffer", "count") == "a replay buffer"
    assert noun_phrase("MLOps tool", "count") == "an MLOps tool"
    assert noun_phrase("chain rule", "definite") == "the chain rule"
    assert noun_phrase("spaCy", "proper") == "spaCy" and noun_phrase("data", "mass") == "data"
    assert sentence_head("chain rule", "definite") == "The chain rule"
    assert sentence_head("spaCy", "proper", "NLP") == "In NLP, spaCy"
    assert sentence_head("3D reconstruction", "mass", "") == "The term 3D reconstruction"
    assert not cannot_open("3D convolution", "count") and cannot_open("pip", "proper")
    assert not cannot_open("BERT", "proper") and set(NOUN_KINDS) >= {"definite", "plural"}


def test_v1_reading_ignores_the_sub_folders(glossary):
    facts, skips = _facts(glossary, subdirs=())
    assert ("definition", "spaCy") not in facts and skips.total() == 0
    # no noun: the article is guessed from the definition, as release v1 did
    assert facts[("definition", "gradient descent")].answer.startswith("A gradient descent is")
    assert facts[("acronym", "MAE")].answer == "MAE stands for masked autoencoder."
    assert GlossarySource(glossary).info().version == "celltext glossary, 1 files"
    assert GlossarySource(glossary, ("v2",)).info().version == "celltext glossary, 2 files"


def test_nouns_choose_articles_agreement_and_case(glossary):
    facts, _ = _facts(glossary)
    fm = "feature maps"
    assert facts[("definition", fm)].answer.startswith("Feature maps are the outputs of")
    assert facts[("kind_of", fm)].answer == "Feature maps are a kind of tensor."
    assert facts[("purpose", fm)].answer == "Feature maps are used to locate features in an image."
    assert (
        facts[("part_of", fm)].answer == "Feature maps are part of a convolutional neural network."
    )
    assert facts[("kind_of", fm)].style == "plural"
    clt = facts[("definition", "central limit theorem")]
    assert clt.answer.startswith("The central limit theorem is the result")
    assert clt.slots["xa"] == "the central limit theorem"
    assert facts[("definition", "BERT")].answer.startswith("BERT is a transformer")
    mlops = facts[("kind_of", "MLOps maturity model")]
    assert mlops.answer == "An MLOps maturity model is a kind of assessment framework."
    assert mlops.slots["xa"] == "an MLOps maturity model"


def test_lower_case_names_keep_their_case(glossary):
    facts, _ = _facts(glossary)
    spacy = {q: f for (q, s), f in facts.items() if s == "spaCy"}
    assert spacy["definition"].answer.startswith("In NLP, spaCy is an open-source Python")
    assert spacy["kind_of"].answer == "In NLP, spaCy is a kind of software library."
    assert spacy["other_name"].answer == "In NLP, spaCy is also called spacy library."
    assert spacy["purpose"].answer == "In NLP, spaCy is used for building production pipelines."
    assert spacy["example"].style == "usage"  # "How is spaCy used in practice?"
    assert spacy["kind_of"].slots["Xa"] == "spaCy"  # "{Xa} is a type of what?"
    digit = facts[("kind_of", "3D reconstruction")]
    assert digit.answer == "In NLP, 3D reconstruction is a kind of computer vision task."
    for fact in facts.values():
        assert "SpaCy" not in fact.answer and "GRPC" not in fact.answer
        if fact.subject in ("spaCy", "3D reconstruction", "feature maps"):
            assert quality.well_formed(fact) is None, fact.answer


def test_collisions_are_reported_not_duplicated(glossary):
    facts, skips = _facts(glossary)
    assert skips.counts["glossary:duplicate_term"] == 1  # "Gradient Descent" repeats v1
    assert "Gradient Descent" in skips.examples["glossary:duplicate_term"][0]
    assert skips.counts["glossary:missing_noun"] == 1
    assert skips.counts["glossary:unknown_noun"] == 1
    assert skips.counts["glossary:acronym_case_collision"] == 1  # MAP after mAP
    assert facts[("acronym", "mAP")].answer == "mAP stands for mean average precision."
    assert ("definition", "maximum a posteriori estimation") in facts  # only its acronym goes
    mae = facts[("acronym", "MAE")]
    assert mae.answer == "MAE can stand for masked autoencoder or mean absolute error."
    subjects = Counter((q, s.lower()) for q, s in facts)
    assert max(subjects.values()) == 1


def test_top_level_nouns_are_read_only_when_asked(glossary):
    text = TOP.replace(
        "  - term: gradient descent\n", "  - term: gradient descent\n    noun: mass\n"
    )
    (glossary / "ml.yaml").write_text(text)
    guessed, _ = _facts(glossary, subdirs=())
    assert guessed[("definition", "gradient descent")].answer.startswith("A gradient descent")
    read, _ = _facts(glossary, subdirs=(), top_level_nouns=True)
    assert read[("definition", "gradient descent")].answer.startswith("Gradient descent is an")


def test_shipped_v2_glossary_is_valid():
    skips = SkipLog()
    source = GlossarySource(subdirs=("v2",))
    entries = [e for e, _ in source.entries(skips) if "noun" in e]
    facts = list(source.facts(skips))
    assert dict(skips.counts) == {"glossary:acronym_case_collision": 1}  # MAP after mAP
    assert len(entries) >= 1900
    nouns = Counter(e["noun"] for e in entries)
    assert set(nouns) <= set(NOUN_KINDS) and nouns["definite"] >= 40
    definite = {e["term"] for e in entries if e["noun"] == "definite"}
    assert {"curse of dimensionality", "central limit theorem", "XOR problem"} <= definite
    answers = {(f.qtype, f.subject): f.answer for f in facts}
    assert answers[("definition", "curse of dimensionality")].startswith("The curse of")
    assert answers[("kind_of", "gRPC")] == "In MLOps, gRPC is a kind of communication framework."
    failing = Counter(
        quality.well_formed(f) for f in facts if f.subject in {e["term"] for e in entries}
    )
    assert failing[None] >= 0.99 * sum(failing.values()), failing
    assert failing["not_a_sentence"] == 0, failing
