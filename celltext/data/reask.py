"""Re-asking a release's training questions in its other training templates.

A release pair keeps its question and the id of the template that wrote it, not the
template's slot values ("an algorithm" for ``{xa}``). :func:`slots_of` reads them back by
matching the question against its template; :func:`reask` renders the same slots with
the other non-reserved templates of the pair's question type and style. Reserved templates
(``test_paraphrase``'s) are never used, so a model trained on re-asked questions has still
never seen a test phrasing.
"""

from __future__ import annotations

import random
import re
import string
from functools import cache

from celltext.data import templates
from celltext.data.templates import Template


@cache
def _pattern(text: str) -> tuple[re.Pattern, tuple[str, ...]]:
    parts, names = [], []
    for literal, field, _, _ in string.Formatter().parse(text):
        parts.append(re.escape(literal))
        if field is None:
            continue
        if field in names:
            parts.append(f"(?P={field})")
        else:
            names.append(field)
            parts.append(f"(?P<{field}>.+?)")
    return re.compile("^" + "".join(parts) + "$", re.S), tuple(names)


def slots_of(template: Template, question: str, subject: str) -> dict[str, str] | None:
    """The slot values ``template`` was filled with to write ``question`` (lower-case names;
    ``{Xa}`` gives ``xa`` with the case the subject has), or None if it does not match."""
    pattern, names = _pattern(template.text)
    m = pattern.match(question)
    if m is None:
        return None
    slots = {"x": subject}
    for name in names:
        value = m.group(name)
        low = name[:1].lower() + name[1:]
        if name != low:  # "{Xa}" capitalised the value: undo it unless the subject is cased
            value = value if subject[:1].isupper() else value[:1].lower() + value[1:]
        slots.setdefault(low, value)
    if slots["x"] != subject and slots["x"].lower() != subject.lower():
        return None
    return slots


def siblings(template_id: str, template_set: str = "v2") -> list[Template]:
    """The other non-reserved templates of a template's question type and style."""
    own = templates.by_id(template_set)[template_id]
    table = templates.TEMPLATE_SETS[template_set][(own.qtype, own.style)]
    return [t for t in table if not t.reserved and t.id != own.id]


def reask(
    pair, n: int, rng: random.Random, template_set: str = "v2", keep=None, with_ids=False
) -> list:
    """Up to ``n`` other training phrasings of a release pair's question (none if its
    template cannot be read back); ``keep(template_id)`` limits the templates used;
    ``with_ids``: ``(template id, question)`` pairs."""
    by_id = templates.by_id(template_set)
    own = by_id.get(pair.template_id)
    if own is None or own.reserved:
        return []
    slots = slots_of(own, pair.question, pair.subject)
    if slots is None:
        return []
    options = [t for t in siblings(own.id, template_set) if keep is None or keep(t.id)]
    picked = rng.sample(options, min(n, len(options)))
    out = []
    for tpl in picked:
        try:
            text = tpl.render(slots)
            out.append((tpl.id, text) if with_ids else text)
        except (KeyError, IndexError):
            continue  # a sibling needs a slot this pair's template did not have ("{lib}")
    return out
