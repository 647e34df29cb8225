"""FOLDOC, the Free On-line Dictionary of Computing (Debian ``dict-foldoc``, GFDL).

An entry is a header (the term, then other names such as the acronym), a blank line,
and indented paragraphs. The first paragraph may start with ``<subject tags>`` and an
``(ACRONYM)``; numbered senses (``1. ... 2. ...``) keep the first. We make a definition
from the first sentences of the first paragraph, an acronym expansion when the header
holds one, and an other-name fact when it holds a synonym. With ``senses="qualified"`` an
entry for a common word whose everyday sense comes first in WordNet is asked about as
"Brazil (operating system)" (see :mod:`celltext.data.sources.senses`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from celltext.data.clean import (
    first_sentences,
    has_boilerplate,
    sentence_case,
    strip_leading_parenthetical,
    strip_markup,
    usable_extra,
    usable_gloss,
)
from celltext.data.domains import domain_from_foldoc_tags
from celltext.data.phrasing import define, join_names
from celltext.data.schema import Fact
from celltext.data.sources.base import SkipLog, SourceInfo
from celltext.data.sources.dictd import DictdSource
from celltext.data.sources.glosses import entry_qualifier

_TAGS = re.compile(r"^\s*((?:<[^<>]{1,60}>\s*,?\s*)+)")
_ACRO = re.compile(r"^\(([A-Z][A-Za-z0-9&/.\-]{1,12})\)\s*")
_SENSE = re.compile(r"^\s*\d+\.\s+")
_REDIRECT = re.compile(r"^(see|compare|same as|an? (?:erroneous|misspelling|variant))\b", re.I)
_ACRONYM_WORD = re.compile(r"^[A-Z][A-Z0-9&/\-]{1,10}s?$")


@dataclass
class FoldocEntry:
    """The parts of one FOLDOC entry that we use."""

    names: list[str]
    tags: list[str]
    acronym: str | None
    first_paragraph: str
    other_paragraphs: list[str]


def parse_entry(text: str) -> FoldocEntry | None:
    """Split an entry into header names, tags, acronym and paragraphs (None if malformed)."""
    lines = text.replace("\r", "").split("\n")
    names: list[str] = []
    i = 0
    while i < len(lines) and lines[i].strip() and not lines[i].startswith((" ", "\t")):
        names.append(lines[i].strip())
        i += 1
    body = "\n".join(lines[i:])
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]
    if not names or not paragraphs:
        return None
    first = _SENSE.sub("", paragraphs[0])
    tags: list[str] = []
    match = _TAGS.match(first)
    if match:
        tags = [t.strip() for t in re.findall(r"<([^<>]+)>", match.group(1))]
        tags = [x.strip() for t in tags for x in t.split(",")]
        first = first[match.end() :]
    first = _SENSE.sub("", first)
    acronym = None
    match = _ACRO.match(first)
    if match:
        acronym = match.group(1)
        first = first[match.end() :]
    return FoldocEntry(names, tags, acronym, first.strip(), paragraphs[1:])


def _expansion_of(subject: str, gloss: str) -> str | None:
    """The expansion if ``gloss`` is just a Title Case spelling-out of acronym ``subject``."""
    words = gloss.rstrip(".").split()
    if not _ACRONYM_WORD.match(subject) or not words or len(words) > 10:
        return None
    if not all(
        w[:1].isupper() or w.lower() in {"of", "and", "for", "the", "in", "to", "on"} for w in words
    ):
        return None
    return gloss.rstrip(".")


def _good_synonym(name: str, subject: str) -> bool:
    """A real other name: not an acronym, not "Gibson, William", not punctuation."""
    if _ACRONYM_WORD.match(name) or "," in name or not re.search(r"[A-Za-z]{3}", name):
        return False
    return name.lower() not in subject.lower() and subject.lower() not in name.lower()


class FoldocSource(DictdSource):
    """Definitions, acronyms and other names from FOLDOC."""

    name = "foldoc"

    def info(self) -> SourceInfo:
        return SourceInfo(
            name=self.name,
            title="FOLDOC, the Free On-line Dictionary of Computing",
            version="Debian dict-foldoc 20230119-1",
            licence="GFDL-1.1-or-later",
            url="https://foldoc.org/",
            attribution="The Free On-line Dictionary of Computing, https://foldoc.org/, "
            "Editor Denis Howe",
        )

    def facts(self, skips: SkipLog) -> Iterator[Fact]:
        for parsed in self.parsed_entries(skips, parse_entry):
            yield from self._entry_facts(parsed, skips)

    def _entry_facts(self, e: FoldocEntry, skips: SkipLog) -> Iterator[Fact]:
        subject = e.names[0]
        body = strip_markup(e.first_paragraph)
        if not body or _REDIRECT.match(body):
            skips.skip(self.name, "cross_reference_only", subject)
            return
        if has_boilerplate(body):
            skips.skip(self.name, "boilerplate", subject)
            return
        domain = domain_from_foldoc_tags(e.tags, body)
        others = [n for n in e.names[1:] if n.lower() != subject.lower()]
        acronym = e.acronym or next((n for n in others if _ACRONYM_WORD.match(n)), None)
        if acronym and acronym.upper() == subject.upper():
            acronym = None
        body = strip_leading_parenthetical(body)
        gloss = first_sentences(body)
        expansion = _expansion_of(subject, gloss)
        if expansion:  # "PAL" -> "Paradox Application Language."
            acronym, subject, gloss = subject, expansion, ""
        if not body or expansion:
            pass
        elif not gloss:
            skips.skip(self.name, "answer_too_long", subject)
        elif not usable_gloss(gloss):
            skips.skip(self.name, "gloss_not_a_definition", subject)
        else:
            named = self._sense_subject(subject, gloss)
            answer = define(subject, gloss)
            yield Fact(named, "definition", answer, domain, self.name, core=gloss)
        for para in e.other_paragraphs[:3]:
            text = first_sentences(strip_markup(para))
            if text and usable_extra(text):
                self._extra.append(text)
        if acronym:
            yield Fact(
                acronym,
                "acronym",
                f"{acronym} stands for {subject}.",
                domain,
                self.name,
                core=subject,
                meta={"expansion": subject},
            )
        synonyms = [n for n in others if n != acronym and _good_synonym(n, subject)]
        if synonyms:
            named = self._sense_subject(subject, gloss if not expansion else "")
            answer = sentence_case(f"{subject} is also called {join_names(synonyms[:3], 'or')}")
            yield Fact(named, "other_name", answer, domain, self.name, core=", ".join(synonyms))

    def _sense_subject(self, subject: str, gloss: str) -> str:
        """``senses="qualified"``: "Brazil (operating system)" where the word's primary
        sense is another one; the qualifier is the gloss's head noun ("computing")."""
        if self.senses == "single":
            return subject
        return self.sense_subject(subject, gloss, entry_qualifier(gloss, "computing", subject))
