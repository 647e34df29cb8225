"""Question templates: several per question type, some reserved for ``test_paraphrase``.

A template belongs to a question type (``qtype``) and a *style* (the grammatical shape
of the subject: a noun, a bare word, a callable, a class, ...). Slots: ``{x}`` is the
subject, ``{xa}`` the subject with an article where it needs one ("an algorithm"), and
capitalised slot names (``{Xa}``) give the value with its first letter upper-cased.

Reserved templates (``reserved=True``) are never used for ``train`` or ``val``; they make
the ``test_paraphrase`` split: seen subjects asked in words the model never saw.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass

from celltext.data.phrasing import cap


@dataclass(frozen=True)
class Template:
    """One question template."""

    id: str
    qtype: str
    style: str
    text: str
    reserved: bool = False

    def render(self, slots: dict[str, str]) -> str:
        """Fill the slots; capitalised slot names give capitalised values."""
        values = dict(slots)
        values.setdefault("xa", slots["x"])
        values |= {k[:1].upper() + k[1:]: cap(v) for k, v in list(values.items())}
        return string.Formatter().vformat(self.text, (), values)


# (qtype, style) -> (normal templates, reserved templates)
_SPEC: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("definition", "noun"): (
        (
            "What is {xa}?",
            "Define {x}.",
            "What does the term {x} mean?",
            "Can you explain what {xa} is?",
            "What is meant by {x}?",
            "Give me the definition of {x}.",
        ),
        ("How would you describe {xa} in one sentence?", "Briefly, what is {xa}?"),
    ),
    ("definition", "word"): (
        (
            "What does the word {x} mean?",
            "What is the meaning of {x}?",
            "Define the word {x}.",
            "What is the definition of {x}?",
        ),
        ("Explain the meaning of the word {x}.", "What do people mean when they say {x}?"),
    ),
    ("definition", "person"): (
        ("Who was {x}?", "Tell me who {x} was.", "What is {x} known for?"),
        ("Who was the person called {x}?",),
    ),
    ("kind_of", "noun"): (
        (
            "What kind of thing is {xa}?",
            "{Xa} is a type of what?",
            "What category does {x} belong to?",
            "What is {xa} a kind of?",
        ),
        ("Into which broader class does {x} fall?", "{Xa} is an example of what?"),
    ),
    ("other_name", "noun"): (
        (
            "What is another name for {x}?",
            "What else is {x} called?",
            "Is there another term for {x}?",
            "What is a synonym of {x}?",
        ),
        ("By what other name is {x} known?", "What alternative term is used for {x}?"),
    ),
    ("acronym", "noun"): (
        (
            "What does {x} stand for?",
            "What is {x} short for?",
            "What is the expansion of the abbreviation {x}?",
            "Expand the acronym {x}.",
        ),
        ("What do the letters {x} stand for?", "Spell out the abbreviation {x}."),
    ),
    ("function", "callable"): (
        (
            "What does {x} do?",
            "Describe what {x} does.",
            "What is the job of {x}?",
            "In {lib}, what does {x} do?",
        ),
        ("Explain briefly what calling {x} does.", "What happens when you call {x}?"),
    ),
    ("function", "class"): (
        (
            "What is {x}?",
            "What does the class {x} represent?",
            "Describe the {lib} class {x}.",
            "What is {x} in {lib}?",
        ),
        ("What kind of object is {x}?", "Explain what the class {x} provides."),
    ),
    ("part_of", "noun"): (
        (
            "What is {xa} part of?",
            "{Xa} is a component of what?",
            "What larger whole contains {xa}?",
        ),
        ("Of what is {xa} a part?",),
    ),
    ("part_of", "module"): (
        (
            "Which module provides {x}?",
            "Where is {x} defined?",
            "In which module can you find {x}?",
        ),
        ("What module do you import {x} from?",),
    ),
    ("example", "sentence"): (
        (
            "Give an example sentence using {x}.",
            "How is the word {x} used in a sentence?",
            "Show {x} used in a sentence.",
        ),
        ("Can you use {x} in a sentence?",),
    ),
    ("example", "instance"): (
        ("Give an example of {xa}.", "What is an example of {xa}?", "Name an example of {xa}."),
        ("Can you think of an example of {xa}?",),
    ),
    ("antonym", "word"): (
        (
            "What is the opposite of {x}?",
            "What is an antonym of {x}?",
            "What word means the opposite of {x}?",
        ),
        ("Name a word with the opposite meaning to {x}.",),
    ),
    ("field", "noun"): (
        (
            "In what field is the term {x} used?",
            "Which subject area does {x} belong to?",
            "{X} is a term from which field?",
        ),
        ("Where would you come across the term {x}?",),
    ),
    ("purpose", "noun"): (
        ("What is {xa} used for?", "Why would you use {xa}?", "What problem does {xa} solve?"),
        ("What is the point of {xa}?",),
    ),
    ("property", "element"): (
        ("What is the {prop} of {x}?", "Tell me the {prop} of {x}.", "Which {prop} does {x} have?"),
        ("{X}: what is its {prop}?",),
    ),
}


def _build() -> dict[tuple[str, str], list[Template]]:
    table: dict[tuple[str, str], list[Template]] = {}
    for (qtype, style), (normal, reserved) in _SPEC.items():
        prefix = f"{qtype}_{style}"
        items = [Template(f"{prefix}_q{i + 1}", qtype, style, t) for i, t in enumerate(normal)]
        items += [
            Template(f"{prefix}_r{i + 1}", qtype, style, t, reserved=True)
            for i, t in enumerate(reserved)
        ]
        table[(qtype, style)] = items
    return table


TEMPLATES: dict[tuple[str, str], list[Template]] = _build()
TEMPLATES_BY_ID: dict[str, Template] = {t.id: t for ts in TEMPLATES.values() for t in ts}
RESERVED_IDS: frozenset[str] = frozenset(t.id for t in TEMPLATES_BY_ID.values() if t.reserved)


def _pick(key: str, options: list[Template], salt: str) -> Template:
    digest = hashlib.sha256(f"{salt}|{key}".encode()).digest()
    return options[int.from_bytes(digest[:8], "big") % len(options)]


def choose(qtype: str, style: str, key: str, reserved: bool = False, salt: str = "") -> Template:
    """Deterministically pick a (normal or reserved) template of ``qtype``/``style`` for ``key``."""
    if (qtype, style) not in TEMPLATES:
        raise KeyError(f"no templates for qtype={qtype!r} style={style!r}")
    options = [t for t in TEMPLATES[(qtype, style)] if t.reserved == reserved]
    return _pick(key, options, salt)
