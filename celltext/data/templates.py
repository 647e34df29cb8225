"""Question templates: several per question type, some reserved for ``test_paraphrase``.

A template belongs to a question type (``qtype``) and a *style* (the grammatical shape
of the subject: a noun, a bare word, a callable, a class, ...). Slots: ``{x}`` is the
subject, ``{xa}`` the subject with an article where it needs one ("an algorithm"), and
capitalised slot names (``{Xa}``) give the value with its first letter upper-cased.

Reserved templates (``reserved=True``) are never used for ``train`` or ``val``; they make
the ``test_paraphrase`` split: seen subjects asked in words the model never saw.

Template sets are versioned (``BuildConfig.template_set``). ``"v1"`` is the set release v1
was built with, frozen: its ids and texts never change. ``"v2"`` is v1 plus questions
written the way people type (lower case, no question mark, "whats", "X - what is it?",
"in a nutshell", "can someone explain") with ids ``<qtype>_<style>_c<i>`` (reserved:
``_cr<i>``), and families for plural subjects (style ``plural``: "What are feature maps?").
Every v1 reserved template stays reserved in v2.
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
    casual: bool = False  # written the way people type (set v2: ids "_c<i>", "_cr<i>")

    def render(self, slots: dict[str, str]) -> str:
        """Fill the slots; capitalised slot names give capitalised values, unless ``slots``
        gives them itself (a name such as "spaCy" keeps its case)."""
        values = dict(slots)
        values.setdefault("xa", slots["x"])
        capped = {k[:1].upper() + k[1:]: cap(v) for k, v in values.items() if k[:1].islower()}
        return string.Formatter().vformat(self.text, (), capped | values)


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


# Template set v2, added to v1's families: questions as people type them (casual), with ids
# "_c<i>" (normal) and "_cr<i>" (reserved). None is a case or punctuation variant of a
# reserved template, so test_paraphrase stays worded apart from train.
_CASUAL: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("definition", "noun"): (
        (
            "whats {xa}",
            "what is {xa}",
            "{x} - what is it?",
            "what is {xa}, in a nutshell",
            "can someone explain {x}",
            "{x} meaning",
            "what does {x} mean",
            "define {x} pls",
        ),
        ("explain {x} briefly", "eli5 {x}", "so what exactly is {xa}"),
    ),
    ("definition", "word"): (
        ("what does {x} mean", "{x} meaning", "meaning of {x}?", "define {x}"),
        ("whats the meaning of the word {x}",),
    ),
    ("definition", "person"): (
        ("who was {x}", "{x} - who was that?", "who was {x}, in a nutshell"),
        ("can someone tell me who {x} was",),
    ),
    ("kind_of", "noun"): (
        (
            "what kind of thing is {xa}",
            "{xa} is a type of what",
            "{x} - what kind of thing is it?",
            "what category is {x} in",
        ),
        ("whats {xa} a kind of", "{x} falls under what category?"),
    ),
    ("other_name", "noun"): (
        ("another name for {x}?", "other names for {x}", "{x} aka?", "whats another word for {x}"),
        ("is {x} called anything else", "{x} also known as what?"),
    ),
    ("acronym", "noun"): (
        (
            "what does {x} stand for",
            "{x} stands for?",
            "whats {x} short for",
            "{x} acronym meaning",
            "{x} - what does it stand for?",
        ),
        ("full form of {x}?", "what do the letters in {x} mean"),
    ),
    ("purpose", "noun"): (
        (
            "what is {xa} for",
            "why use {xa}",
            "{x} - what is it used for?",
            "what do you use {xa} for",
        ),
        ("whats {xa} good for", "{x}: why would anyone use it?"),
    ),
    ("part_of", "noun"): (
        ("what is {xa} part of", "{x} - part of what?", "{xa} belongs to what"),
        ("whats {xa} a part of",),
    ),
    ("example", "instance"): (
        ("example of {xa}?", "give me an example of {xa}", "{x} example", "any examples of {x}?"),
        ("whats a good example of {xa}",),
    ),
    ("example", "sentence"): (
        ("{x} in a sentence", "example sentence with {x}"),
        ("sentence with the word {x} pls",),
    ),
    ("function", "callable"): (
        ("what does {x} do", "{x} - what does it do?", "whats {x} for"),
        ("what is {x} used for in code",),
    ),
    ("function", "class"): (
        ("what is {x}", "{x} class - what is it?"),
        ("whats the {x} class for",),
    ),
    ("definition", "plural"): (
        ("what are {x}", "{x} - what are they?", "can someone explain {x}", "{x} meaning"),
        ("so what exactly are {x}",),
    ),
    ("kind_of", "plural"): (
        ("what kind of thing are {x}", "{x} - what kind of thing are they?"),
        ("{x} are a kind of what",),
    ),
    ("purpose", "plural"): (
        ("what are {x} for", "why use {x}", "{x} - what are they used for?"),
        ("whats the point of {x} anyway",),
    ),
    ("part_of", "plural"): (
        ("{x} - part of what?", "what are {x} part of"),
        ("{x} belong to what",),
    ),
    ("example", "usage"): (
        ("{x} example", "example of {x} in use?", "how do people use {x}"),
        ("{x} in practice?",),
    ),
}

# Families for plural subjects ("Feature maps are ...") and for a usage example of a name
# ("How is torchrun used in practice?", not "Give an example of torchrun"), set v2 only.
_PLURAL: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("definition", "plural"): (
        (
            "What are {x}?",
            "Define {x}.",
            "What does the term {x} mean?",
            "Can you explain what {x} are?",
        ),
        ("How would you describe {x} in one sentence?", "Briefly, what are {x}?"),
    ),
    ("kind_of", "plural"): (
        (
            "What kind of thing are {x}?",
            "{X} are a type of what?",
            "What category do {x} belong to?",
        ),
        ("Into which broader class do {x} fall?", "{X} are an example of what?"),
    ),
    ("purpose", "plural"): (
        ("What are {x} used for?", "Why would you use {x}?", "What problem do {x} solve?"),
        ("What is the point of {x}?",),
    ),
    ("example", "usage"): (
        (
            "How is {x} used in practice?",
            "Give an example of {x} in use.",
            "Show how {x} is used.",
        ),
        ("What does using {x} look like?",),
    ),
    ("part_of", "plural"): (
        (
            "What are {x} part of?",
            "{X} are a component of what?",
            "What larger whole contains {x}?",
        ),
        ("Of what are {x} a part?",),
    ),
}


def _family(qtype: str, style: str, normal, reserved, casual: bool = False) -> list[Template]:
    prefix, (q, r) = f"{qtype}_{style}", ("c", "cr") if casual else ("q", "r")
    items = [
        Template(f"{prefix}_{q}{i + 1}", qtype, style, t, casual=casual)
        for i, t in enumerate(normal)
    ]
    return items + [
        Template(f"{prefix}_{r}{i + 1}", qtype, style, t, reserved=True, casual=casual)
        for i, t in enumerate(reserved)
    ]


def _build(version: str) -> dict[tuple[str, str], list[Template]]:
    table = {key: _family(*key, *spec) for key, spec in _SPEC.items()}
    if version == "v2":
        table |= {key: _family(*key, *spec) for key, spec in _PLURAL.items()}
        for key, spec in _CASUAL.items():
            table[key] = table[key] + _family(*key, *spec, casual=True)
    return table


TEMPLATE_SET_NAMES: tuple[str, ...] = ("v1", "v2")
TEMPLATE_SETS: dict[str, dict[tuple[str, str], list[Template]]] = {
    name: _build(name) for name in TEMPLATE_SET_NAMES
}
# Template set v1 (release v1), what callers that name no set get
TEMPLATES: dict[tuple[str, str], list[Template]] = TEMPLATE_SETS["v1"]
TEMPLATES_BY_ID: dict[str, Template] = {t.id: t for ts in TEMPLATES.values() for t in ts}
RESERVED_IDS: frozenset[str] = frozenset(t.id for t in TEMPLATES_BY_ID.values() if t.reserved)


def by_id(template_set: str = "v1") -> dict[str, Template]:
    """Every template of a set by id."""
    return {t.id: t for ts in TEMPLATE_SETS[template_set].values() for t in ts}


def reserved_ids(template_set: str = "v1") -> frozenset[str]:
    """The ids of a set's reserved (``test_paraphrase``-only) templates."""
    return frozenset(i for i, t in by_id(template_set).items() if t.reserved)


def _pick(key: str, options: list[Template], salt: str) -> Template:
    digest = hashlib.sha256(f"{salt}|{key}".encode()).digest()
    return options[int.from_bytes(digest[:8], "big") % len(options)]


def choose(
    qtype: str,
    style: str,
    key: str,
    reserved: bool = False,
    salt: str = "",
    template_set: str = "v1",
) -> Template:
    """Deterministically pick a (normal or reserved) template of ``qtype``/``style`` for ``key``
    from ``template_set``."""
    table = TEMPLATE_SETS[template_set]
    if (qtype, style) not in table:
        raise KeyError(f"no templates for qtype={qtype!r} style={style!r} in {template_set}")
    options = [t for t in table[(qtype, style)] if t.reserved == reserved]
    return _pick(key, options, salt)
