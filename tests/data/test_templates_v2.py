"""Template set v2 (questions as people type them) beside the frozen set v1, and the
release build configs that select them (``configs/releases/*.yaml``)."""

from __future__ import annotations

import re

import pytest

from celltext.config import ConfigError
from celltext.data import templates
from celltext.data.build import RELEASE_CONFIGS, BuildConfig

MAIN_QTYPES = ("definition", "kind_of", "purpose", "acronym", "example", "other_name", "part_of")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z{} ]", "", text.lower().replace("what's", "whats")).strip()


def test_v2_keeps_every_v1_template_as_it_was():
    v1, v2 = templates.by_id("v1"), templates.by_id("v2")
    for tid, tpl in v1.items():
        assert v2[tid] == tpl  # same text, family and reserved flag
    assert templates.reserved_ids("v1") <= templates.reserved_ids("v2")
    assert not any(t.casual for t in v1.values())


def test_v2_has_casual_normal_and_reserved_templates_for_the_main_types():
    v2 = templates.by_id("v2").values()
    for qtype in MAIN_QTYPES:
        casual = [t for t in v2 if t.qtype == qtype and t.casual]
        assert any(t.reserved for t in casual) and any(not t.reserved for t in casual), qtype
    texts = {t.text for t in v2 if t.casual}
    assert {"whats {xa}", "{x} - what is it?", "can someone explain {x}"} <= texts
    assert "what is {xa}, in a nutshell" in texts and "what does {x} stand for" in texts
    for t in v2:
        assert re.fullmatch(rf"{t.qtype}_{t.style}_(q|r|c|cr)\d+", t.id), t.id
        assert t.casual == bool(re.search(r"_cr?\d+$", t.id)), t.id


@pytest.mark.parametrize("template_set", templates.TEMPLATE_SET_NAMES)
def test_reserved_templates_are_worded_apart_from_normal_ones(template_set):
    """No normal template is a case or punctuation variant of a reserved one of its family,
    so test_paraphrase questions are never asked in train's words."""
    for family in templates.TEMPLATE_SETS[template_set].values():
        reserved = {_norm(t.text) for t in family if t.reserved}
        normal = {_norm(t.text) for t in family if not t.reserved}
        assert not reserved & normal, family[0].qtype
    ids = [t.id for ts in templates.TEMPLATE_SETS[template_set].values() for t in ts]
    assert len(ids) == len(set(ids))


def test_choice_is_by_set_and_names_keep_their_case():
    for key in ("a", "b", "c", "d"):
        v1 = templates.choose("definition", "noun", key, salt="s")
        assert v1 == templates.choose("definition", "noun", key, salt="s", template_set="v1")
    with pytest.raises(KeyError):
        templates.choose("definition", "plural", "k")  # plural families are v2 only
    plural = templates.choose("definition", "plural", "k", template_set="v2")
    assert "{x}" in plural.text and "is" not in plural.text.split()
    tpl = templates.by_id("v2")["kind_of_noun_q2"]  # "{Xa} is a type of what?"
    assert tpl.render({"x": "spaCy", "xa": "spaCy", "Xa": "spaCy"}) == "spaCy is a type of what?"
    assert tpl.render({"x": "cup", "xa": "a cup"}) == "A cup is a type of what?"


def test_release_configs_validate():
    paths = sorted(RELEASE_CONFIGS.glob("*.yaml"))
    assert {p.stem for p in paths} >= {"v1", "v2"}
    for path in paths:
        cfg = BuildConfig.load(path)
        assert cfg.version == path.stem
        assert BuildConfig.for_version(path.stem).config_hash() == cfg.config_hash()
    v1, v2 = BuildConfig.for_version("v1"), BuildConfig.for_version("v2")
    assert v2.template_set == "v2" and v2.glossary_subdirs == ("v2",)
    assert v2.split_salt == v1.split_salt  # every subject keeps its v1 split
    changed = {k for k, v in v2.to_dict().items() if v1.to_dict().get(k) != v}
    assert changed == {
        "version",
        "glossary_subdirs",
        "glossary_top_level_nouns",
        "template_set",
        "docstrings_max_per_module",
        "max_per_domain",
        "paraphrase_fraction",
        "senses",
        "grammar_gate",
        "wordnet_max_general",
    }
    assert BuildConfig.for_version("v9").config_hash() == BuildConfig(version="v9").config_hash()


def test_glossary_nouns_need_template_set_v2():
    with pytest.raises(ConfigError, match="template_set"):
        BuildConfig(glossary_subdirs=("v2",))
    with pytest.raises(ConfigError, match="template_set"):
        BuildConfig(glossary_top_level_nouns=True)
    with pytest.raises(ConfigError, match="template_set"):
        BuildConfig.from_dict({"template_set": "v3"})
