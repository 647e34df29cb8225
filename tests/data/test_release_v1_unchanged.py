"""Release v1 stays buildable and unchanged while v2 options are added.

The build config, the template set, the glossary's facts and the questions asked about them
are compared with the committed ``data/releases/v1`` and with digests taken from the code
that built it (before the v2 glossary, template set and build options existed).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from celltext.data import templates
from celltext.data.build import BuildConfig, question_for
from celltext.data.phrasing import a_or_an
from celltext.data.release import load_release
from celltext.data.sources.base import SkipLog
from celltext.data.sources.glossary import GlossarySource
from celltext.paths import REPO_ROOT

# sha256 of every v1 glossary fact with its normal and reserved question, and of the v1
# template table, both computed with the code at commit 2eb192c (before release v2 work)
V1_GLOSSARY_FACTS_SHA = "3aad1e8600895928b79fb3336546fea05f7205740844da7dd92a9b08cb9e30fe"
V1_GLOSSARY_FACTS = 1515
V1_TEMPLATES_SHA = "6f89a9f6cadbb4d196efe1bd04f0cbaf1250825f60e1294528cd4bcd02642836"


@pytest.fixture(scope="module")
def v1():
    return load_release("v1")


@pytest.fixture(scope="module")
def v1_glossary_facts():
    skips = SkipLog()
    facts = list(GlossarySource().facts(skips))
    assert skips.total() == 0, skips.to_dict()
    return facts


def test_v1_config_and_its_hash_are_unchanged(v1):
    generator = v1.manifest["generator"]
    assert BuildConfig().to_dict() == generator["config"]
    assert BuildConfig().config_hash() == generator["config_hash"]
    assert BuildConfig.from_dict(generator["config"]).config_hash() == generator["config_hash"]
    release_yaml = BuildConfig.load(REPO_ROOT / "configs/releases/v1.yaml")
    assert release_yaml.config_hash() == generator["config_hash"]
    assert BuildConfig.for_version("v1").config_hash() == generator["config_hash"]


def test_v1_template_set_is_frozen(v1):
    rows = sorted(
        (t.id, t.qtype, t.style, t.text, t.reserved)
        for ts in templates.TEMPLATE_SETS["v1"].values()
        for t in ts
    )
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest() == V1_TEMPLATES_SHA
    assert templates.TEMPLATES is templates.TEMPLATE_SETS["v1"]
    generator = v1.manifest["generator"]
    assert sorted(templates.by_id("v1")) == generator["templates"]
    assert sorted(templates.reserved_ids("v1")) == generator["reserved_templates"]


def test_v1_glossary_facts_and_questions_are_unchanged(v1_glossary_facts):
    cfg = BuildConfig()
    rows = [
        [
            f.subject,
            f.qtype,
            f.answer,
            f.domain,
            f.source,
            f.style,
            f.aspect,
            sorted(f.slots.items()),
            f.core,
            sorted(f.meta.items()),
            [question_for(f, cfg, reserved=r) for r in (False, True)],
        ]
        for f in v1_glossary_facts
    ]
    blob = json.dumps(json.loads(json.dumps(rows)), sort_keys=True)
    assert len(rows) == V1_GLOSSARY_FACTS
    assert hashlib.sha256(blob.encode()).hexdigest() == V1_GLOSSARY_FACTS_SHA


def test_committed_v1_glossary_pairs_are_reproduced(v1, v1_glossary_facts):
    """Every glossary pair of the committed release: same answer, question and template."""
    cfg = BuildConfig()
    by_key: dict = {}
    for f in v1_glossary_facts:  # the first fact of a subject and type wins, as in the build
        by_key.setdefault((f.qtype, f.subject), f)
    pairs = [p for p in v1.pairs() if p.source == "glossary"]
    assert len(pairs) > 1500
    for p in pairs:
        fact = by_key[(p.qtype, p.subject)]
        assert fact.answer == p.answer and fact.domain == p.domain
        question, tid = question_for(fact, cfg, reserved=p.split == "test_paraphrase")
        assert (question, tid) == (p.question, p.template_id), p.id


def test_every_v1_pair_gets_its_template_again(v1):
    """All sources: the v1 template set picks each committed pair's template again."""
    salt = BuildConfig().split_salt
    pairs = v1.pairs()
    assert len(pairs) == v1.manifest["total"]
    for p in pairs:
        style = p.template_id[len(p.qtype) + 1 :].rsplit("_", 1)[0]
        fid = p.id.removesuffix("-p")
        reserved = p.split == "test_paraphrase"
        tpl = templates.choose(p.qtype, style, fid, reserved, salt=salt)
        assert tpl.id == p.template_id, p.id


def test_letter_name_acronyms_take_an_and_v1_words_keep_theirs():
    assert a_or_an("MLOps maturity model") == "an"
    assert a_or_an("XGBoost model") == "an" and a_or_an("GPUs") == "a"
    # unchanged: words, all-capital acronyms, sound exceptions
    assert a_or_an("NumPy array") == "a" and a_or_an("LSTM") == "an" and a_or_an("GPU") == "a"
    assert a_or_an("SQLite file") == "an" and a_or_an("union") == "a" and a_or_an("hour") == "an"
