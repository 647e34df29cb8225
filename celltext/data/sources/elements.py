"""The Elements database (Debian ``dict-elements``, public domain): chemical elements.

Entries: the element name, ``Symbol: X``, ``Atomic number: N``, ``Atomic weight: W`` and a
short description. We ask for each property and for a definition from the description.
With ``senses="qualified"`` an element whose name means something else first in WordNet
is asked about as "lead (metallic element)" (see :mod:`celltext.data.sources.senses`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from celltext.data.clean import first_sentences, strip_markup
from celltext.data.phrasing import define
from celltext.data.schema import Fact
from celltext.data.sources.base import SkipLog, SourceInfo
from celltext.data.sources.dictd import DictdSource

_FIELD = re.compile(r"^(Symbol|Atomic number|Atomic weight):\s*(.+)$")


def parse_entry(text: str) -> tuple[str, dict[str, str], str] | None:
    """``(name, {property: value}, description)`` or None when malformed."""
    lines = [ln.strip() for ln in text.strip().split("\n")]
    if len(lines) < 3:
        return None
    name, props, desc = lines[0], {}, []
    for line in lines[1:]:
        match = _FIELD.match(line)
        if match:
            props[match.group(1).lower()] = match.group(2).strip().strip("()[]")
        elif line:
            desc.append(line)
    if "symbol" not in props or "atomic number" not in props or not name.isalpha():
        return None
    return name, props, " ".join(desc)


class ElementsSource(DictdSource):
    """Symbols, atomic numbers and weights, and descriptions of the chemical elements."""

    name = "elements"

    def info(self) -> SourceInfo:
        return SourceInfo(
            name=self.name,
            title="The Elements database",
            version="Debian dict-elements 20001107-a-9.1",
            licence="public domain",
            url="http://www.miranda.org/~jkominek/elements/",
            attribution="compiled by Jay F. Kominek",
        )

    def facts(self, skips: SkipLog) -> Iterator[Fact]:
        for name, props, desc in self.parsed_entries(skips, parse_entry):
            word = name.lower()
            gloss = first_sentences(strip_markup(desc))
            subject = self.sense_subject(word, gloss, "element", ancestor="chemical_element.n.01")
            for prop, value in props.items():
                answer = f"The {prop} of {word} is {value}."
                yield Fact(
                    subject,
                    "property",
                    answer,
                    "general_knowledge",
                    self.name,
                    style="element",
                    aspect=prop,
                    slots={"prop": prop},
                    core=f"{prop} {value}",
                )
            if gloss and len(gloss.split()) >= 4:
                answer = define(word, gloss)
                yield Fact(
                    subject, "definition", answer, "general_knowledge", self.name, core=gloss
                )
