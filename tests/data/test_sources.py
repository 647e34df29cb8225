"""Source readers on tiny fixture databases: parsing, malformed entries counted."""

from __future__ import annotations

from celltext.data.sources.base import SkipLog
from celltext.data.sources.dictd import DictdDatabase, decode_b64_number, encode_b64_number
from celltext.data.sources.elements import ElementsSource
from celltext.data.sources.foldoc import FoldocSource, parse_entry
from celltext.data.sources.glossary import GlossarySource
from celltext.data.sources.jargon import JargonSource
from celltext.data.sources.vera import VeraSource


def test_b64_numbers_round_trip():
    for value in (0, 1, 63, 64, 4095, 123456789):
        assert decode_b64_number(encode_b64_number(value)) == value
    assert decode_b64_number("BA") == 64


def test_malformed_index_line_is_skipped_and_counted(dictd_dir):
    skips = SkipLog()
    entries = list(DictdDatabase("foldoc", dictd_dir).entries(skips))
    assert len(entries) == 5
    assert skips.counts["foldoc:malformed_index_line"] == 1
    with open(dictd_dir / "foldoc.index", "a") as fh:
        fh.write("ghost\tZZZZ\tB\n")  # offset beyond the data
    skips = SkipLog()
    list(DictdDatabase("foldoc", dictd_dir).entries(skips))
    assert skips.counts["foldoc:offset_out_of_range"] == 1
    assert skips.total("foldoc") == 2
    assert skips.to_dict()["foldoc:offset_out_of_range"]["examples"]


def test_foldoc_definitions_acronyms_and_cross_references(dictd_dir):
    skips = SkipLog()
    facts = {(f.qtype, f.subject): f for f in FoldocSource(dictd_dir).facts(skips)}
    nn = facts[("definition", "neural network")]
    assert nn.answer.startswith("A neural network is a network of simple units")
    assert "{" not in nn.answer and "See" not in nn.answer and "1997" not in nn.answer
    assert nn.domain == "ai_ml_fundamentals"
    assert facts[("acronym", "TTS")].answer == "TTS stands for Text To Speech."
    assert facts[("definition", "bitmap")].domain == "computer_vision"
    assert skips.counts["foldoc:cross_reference_only"] == 1


def test_parse_entry_reads_tags_and_acronym():
    parsed = parse_entry("Foo Bar\nFB\n\n   <programming, tool> (FB) A thing.\n")
    assert parsed.names == ["Foo Bar", "FB"]
    assert parsed.tags == ["programming", "tool"]
    assert parsed.acronym == "FB" and parsed.first_paragraph == "A thing."
    assert parse_entry("") is None


def test_vera_groups_expansions(dictd_dir):
    facts = {f.subject: f for f in VeraSource(dictd_dir).facts(SkipLog())}
    assert facts["CNN"].answer == "CNN stands for Convolutional Neural Network."
    assert facts["CNN"].domain == "deep_learning"
    assert "Asynchronous Transfer Mode or Automatic Teller Machine" in facts["ATM"].answer


def test_elements_malformed_entry_counted(dictd_dir):
    skips = SkipLog()
    facts = list(ElementsSource(dictd_dir).facts(skips))
    answers = {f.answer for f in facts}
    assert "The symbol of iron is Fe." in answers
    assert "The atomic number of iron is 26." in answers
    assert skips.counts["elements:malformed_entry"] == 1


def test_jargon_strips_etymology_and_sense_numbers(dictd_dir):
    (fact,) = list(JargonSource(dictd_dir).facts(SkipLog()))
    assert fact.answer.startswith("A kluge is a clever programming trick")
    assert "German" not in fact.answer


def test_glossary_entries_and_malformed_entry(glossary_dir):
    skips = SkipLog()
    facts = list(GlossarySource(glossary_dir).facts(skips))
    kinds = {(f.qtype, f.subject) for f in facts}
    assert ("purpose", "replay buffer") in kinds and ("acronym", "PI") in kinds
    assert ("other_name", "discount factor") in kinds
    assert skips.counts["glossary:malformed_entry"] == 1
    purpose = next(f for f in facts if f.qtype == "purpose")
    assert purpose.answer == (
        "A replay buffer is used to break the correlation between consecutive updates."
    )


def test_shipped_glossary_is_valid():
    skips = SkipLog()
    facts = list(GlossarySource().facts(skips))
    assert skips.total() == 0, skips.to_dict()
    domains = {f.domain for f in facts}
    assert {"reinforcement_learning", "computer_vision", "nlp_llm", "mlops_engineering"} <= domains
    assert sum(f.domain == "reinforcement_learning" for f in facts) >= 450


def test_docstring_source_on_small_stdlib_modules():
    from celltext.data.sources.docstrings import DocstringSource

    src = DocstringSource(modules=(("json", "programming_algorithms"), ("math", "math_statistics")))
    skips = SkipLog()
    facts = list(src.facts(skips))
    by = {(f.qtype, f.subject): f for f in facts}
    acos = by[("function", "math.acos")]
    assert acos.answer.startswith("The function math.acos") and acos.domain == "math_statistics"
    assert by[("part_of", "math.acos")].answer == "The math module provides acos."
    assert ("function", "json.dump") in by
    info = src.info()
    assert "python" in info.version and "PSF" in info.licence
    skipped = DocstringSource(modules=(("no_such_module_xyz", "programming_algorithms"),))
    assert list(skipped.facts(skips)) == [] and skips.counts["docstrings:module_import_failed"]
