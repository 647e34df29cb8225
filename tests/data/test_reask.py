"""Re-asking release questions in other training templates (never a reserved one)."""

import random
from types import SimpleNamespace

from celltext.data import templates
from celltext.data.reask import reask, slots_of
from celltext.inference.ranking import dev_template


def _pair(template_id: str, subject: str = "gradient descent"):
    tpl = templates.by_id("v2")[template_id]
    slots = {"x": subject, "xa": subject}
    return SimpleNamespace(
        question=tpl.render(slots), subject=subject, template_id=template_id, qtype=tpl.qtype
    )


def test_slots_are_read_back_from_the_question():
    tpl = templates.by_id("v2")["definition_noun_q1"]  # "What is {xa}?"
    assert slots_of(tpl, "What is a decision tree?", "decision tree")["xa"] == "a decision tree"
    assert slots_of(tpl, "Define it.", "decision tree") is None


def test_reask_uses_other_training_templates_only():
    reserved = templates.reserved_ids("v2")
    pair = _pair("definition_noun_q1")
    got = reask(pair, 50, random.Random(0), with_ids=True)
    assert got and all(tid not in reserved and tid != "definition_noun_q1" for tid, _ in got)
    assert all("gradient descent" in q for _, q in got)
    assert len({q for _, q in got}) == len(got)


def test_keep_limits_the_templates_and_reserved_pairs_are_not_reasked():
    pair = _pair("definition_noun_q1")
    keep = lambda tid: dev_template(tid, 0.25)  # noqa: E731
    got = reask(pair, 50, random.Random(0), keep=keep, with_ids=True)
    assert got and all(keep(tid) for tid, _ in got)
    reserved = next(iter(sorted(templates.reserved_ids("v2"))))
    assert reask(_pair(reserved), 3, random.Random(0)) == []
