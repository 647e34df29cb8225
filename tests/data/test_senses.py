"""Word senses (``senses="qualified"``, release v2) on the real WordNet and small dictd
fixtures, and the release v1 behaviour without the option ("single")."""

from __future__ import annotations

import gzip

import pytest

from celltext.data.sources.base import SkipLog
from celltext.data.sources.dictd import encode_b64_number
from celltext.data.sources.elements import ElementsSource
from celltext.data.sources.foldoc import FoldocSource
from celltext.data.sources.glosses import (
    entry_qualifier,
    head_phrase,
    kind_reads_wrong,
    plural_gloss,
    strip_attribution,
)
from celltext.data.sources.jargon import JargonSource
from celltext.data.sources.senses import check_senses
from celltext.data.sources.wordnet import WordNetSource

FOLDOC = {
    "Brazil": (
        "Brazil\n\n   <operating system> An {operating system} from {Acorn Computers} used on\n"
        "   an {ARM} card which could be fitted to an {IBM PC}.\n"
    ),
    "Mouse": (
        "Mouse\n\n   <language> A mighty small {macro} language developed by Peter\n"
        "   Grogono in 1975.\n"
    ),
    "standard deviation": (
        "standard deviation\n\n   <statistics> A measure of the range of values in a set\n"
        "   of numbers.\n"
    ),
    "quicksort": (
        "quicksort\n\n   <algorithm> A sorting {algorithm} that partitions an array\n"
        "   around a pivot and sorts the two parts recursively.\n"
    ),
}
JARGON = {
    "troll": (
        "troll\n /trohl/, v.,n.\n\n    1. To utter a posting on {Usenet} designed to attract\n"
        "    predictable responses or flames.\n"
    ),
}
ELEMENTS = {
    "lead": "lead\nSymbol: Pb\nAtomic number: 82\nAtomic weight: 207.2\n"
    "Soft, malleable, bluish-white metallic element that tarnishes in air.\n",
    "iron": "iron\nSymbol: Fe\nAtomic number: 26\nAtomic weight: 55.847\n"
    "Silvery malleable and ductile metallic transition element.\n",
}


def _write_dictd(directory, name: str, entries: dict[str, str]) -> None:
    blob, index = b"", []
    for head, text in entries.items():
        raw = text.encode()
        index.append(f"{head}\t{encode_b64_number(len(blob))}\t{encode_b64_number(len(raw))}")
        blob += raw
    (directory / f"{name}.index").write_text("\n".join(index) + "\n")
    with gzip.open(directory / f"{name}.dict.dz", "wb") as fh:
        fh.write(blob)


@pytest.fixture(scope="module")
def dictd(tmp_path_factory):
    d = tmp_path_factory.mktemp("senses")
    for name, entries in (("foldoc", FOLDOC), ("jargon", JARGON), ("elements", ELEMENTS)):
        _write_dictd(d, name, entries)
    return d


@pytest.fixture(scope="module")
def v1_wordnet() -> WordNetSource:
    return WordNetSource()


@pytest.fixture(scope="module")
def v2_wordnet() -> WordNetSource:
    return WordNetSource(senses="qualified")


def _by(facts, qtype: str) -> dict[str, str]:
    return {f.subject: f.answer for f in facts if f.qtype == qtype}


def test_senses_option_is_checked_and_single_by_default(dictd):
    assert check_senses("qualified") == "qualified"
    with pytest.raises(ValueError, match="senses"):
        check_senses("both")
    with pytest.raises(ValueError, match="senses"):
        WordNetSource(senses="v2")
    with pytest.raises(ValueError, match="senses"):
        FoldocSource(dictd, senses="v2")
    assert WordNetSource().senses == "single" and JargonSource(dictd).senses == "single"


def test_gloss_helpers():
    assert head_phrase("coins made of gold") == ["coins"]
    assert head_phrase("an operating system from Acorn") == ["an", "operating", "system"]
    plural = {"coins", "boas"}.__contains__
    assert plural_gloss("coins made of gold", plural)
    assert plural_gloss("large Old World boas", plural)
    assert not plural_gloss("any of numerous small rodents", plural)
    assert strip_attribution("great wealth; --Ben Jonson") == "great wealth"
    assert entry_qualifier("An operating system from Acorn Computers.", "x") == "operating system"
    assert entry_qualifier("A mighty small macro language developed by P.", "x") == "macro language"
    assert entry_qualifier("To make a file inaccessible.", "computing") == "computing"
    assert kind_reads_wrong("the square root of the variance", ["variance"])
    assert kind_reads_wrong("the part of the day between noon and evening", ["day"])
    assert not kind_reads_wrong("a small open container usually used for drinking", ["container"])
    assert not kind_reads_wrong("a shade of blue tinged with green", ["blue"])


def test_gold_is_not_defined_by_a_plural_gloss(v1_wordnet, v2_wordnet):
    v1 = v1_wordnet.lemma_facts("gold")
    assert _by(v1, "definition")["gold"] == "Gold is coins made of gold."  # the v1 answer
    v2 = v2_wordnet.lemma_facts("gold")
    definition = _by(v2, "definition")["gold"]
    assert "old is a soft yellow malleable ductile" in definition  # (phrasing adds "A")
    assert not any("coins" in f.answer for f in v2)
    assert _by(v2, "kind_of")["gold"] == "Gold is a kind of noble metal."


def test_python_plural_gloss_gives_no_definition(v2_wordnet):
    skips = SkipLog()
    facts = v2_wordnet.lemma_facts("python", skips)
    assert "python (boa)" not in _by(facts, "definition")  # "large Old World boas"
    assert _by(facts, "kind_of")["python (boa)"] == "Python is a kind of boa."
    assert skips.counts["wordnet:not_a_definition"] >= 1


def test_attention_everyday_sense_is_qualified(v1_wordnet, v2_wordnet):
    v1 = v1_wordnet.lemma_facts("attention")
    assert _by(v1, "kind_of")["attention"] == "Attention is a kind of basic cognitive process."
    v2 = v2_wordnet.lemma_facts("attention")
    subjects = {f.subject for f in v2}
    assert "attention" not in subjects  # the bare word is left to the ML sense
    kinds = _by(v2, "kind_of")
    assert kinds["attention (psychology)"] == "Attention is a kind of basic cognitive process."
    assert _by(v2, "definition")["attention (psychology)"].startswith("Attention is the process")
    assert "attention (military)" in subjects  # "stand at attention": another lexname


def test_standard_deviation_is_not_a_kind_of_variance(v1_wordnet, v2_wordnet):
    v1 = v1_wordnet.lemma_facts("standard_deviation")
    assert _by(v1, "kind_of")["standard deviation"] == "Standard deviation is a kind of variance."
    skips = SkipLog()
    v2 = v2_wordnet.lemma_facts("standard_deviation", skips)
    assert "standard deviation" not in _by(v2, "kind_of")
    assert "square root of the variance" in _by(v2, "definition")["standard deviation"]
    assert skips.counts["wordnet:kind_of_reads_wrong"] == 1


def test_distinct_senses_get_distinct_subjects(v2_wordnet):
    planner = v2_wordnet.planner
    assert planner.plan("Brazil") == {"brazil.n.01": "Brazil"}
    spring = planner.plan("spring")
    assert spring["spring.n.01"] == "spring"  # the season: the most frequent sense
    assert spring["spring.n.02"] == "spring (elastic device)"
    assert len(set(spring.values())) == len(spring)
    java = planner.plan("java")  # a technical word: the bare subject is the language
    assert java == {"java.n.01": "Java (island)", "java.n.03": "Java"}
    brazil = _by(v2_wordnet.lemma_facts("brazil"), "definition")["Brazil"]
    assert "largest Latin American country" in brazil


def test_foldoc_qualifies_a_common_word(dictd):
    v1 = {(f.qtype, f.subject): f for f in FoldocSource(dictd).facts(SkipLog())}
    assert v1[("definition", "Brazil")].answer.startswith("Brazil is an operating system")
    assert ("definition", "Mouse") in v1
    v2 = {(f.qtype, f.subject): f for f in FoldocSource(dictd, senses="qualified").facts(SkipLog())}
    brazil = v2[("definition", "Brazil (operating system)")]
    assert brazil.answer == v1[("definition", "Brazil")].answer  # the answer names the word
    assert ("definition", "Mouse (macro language)") in v2
    # WordNet's own sense is statistical, and quicksort is not a common word: kept as they are
    assert ("definition", "standard deviation") in v2 and ("definition", "quicksort") in v2


def test_jargon_and_elements_name_their_sense(dictd):
    assert {f.subject for f in JargonSource(dictd).facts(SkipLog())} == {"troll"}
    v2 = {f.subject for f in JargonSource(dictd, senses="qualified").facts(SkipLog())}
    assert v2 == {"troll (jargon)"}
    v1 = {f.subject for f in ElementsSource(dictd).facts(SkipLog())}
    assert v1 == {"lead", "iron"}
    v2_facts = list(ElementsSource(dictd, senses="qualified").facts(SkipLog()))
    # "lead" first means a lead in a race; WordNet's element sense has a qualified subject
    assert {f.subject for f in v2_facts} == {"lead (metallic element)", "iron"}
    assert "The symbol of lead is Pb." in {f.answer for f in v2_facts}
