"""V.E.R.A., Virtual Entity of Relevant Acronyms (Debian ``dict-vera``, GFDL).

Each entry is an acronym and one expansion, optionally followed by context in
parentheses (``(ethernet, LAN)``) and an alternative spelling in quotes. An acronym with
several entries gets one answer naming up to three expansions. Acronyms have no word
senses to tell apart: ``senses`` (see :class:`DictdSource`) changes nothing here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from celltext.data.clean import english_ratio, normalise_unicode
from celltext.data.domains import domain_from_keywords
from celltext.data.phrasing import join_names
from celltext.data.schema import Fact
from celltext.data.sources.base import SkipLog, SourceInfo
from celltext.data.sources.dictd import DictdSource

_CONTEXT = re.compile(r"\s*\(([^()]*)\)\s*$")
_ALT = re.compile(r',\s*"[^"]*"\s*$')
_ACRONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9&/+.\-]{0,11}$")
_EXPANSION_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ,'&/+\-]*$")


def parse_entry(text: str) -> tuple[str, str, list[str]] | None:
    """``(acronym, expansion, context tags)`` or None when the entry is malformed."""
    lines = [ln.strip() for ln in normalise_unicode(text).split("\n") if ln.strip()]
    if len(lines) < 2:
        return None
    acronym, body = lines[0], " ".join(lines[1:])
    body = _ALT.sub("", body)
    context: list[str] = []
    match = _CONTEXT.search(body)
    if match:
        context = [c.strip() for c in match.group(1).split(",") if c.strip()]
        body = body[: match.start()]
    body = re.sub(r"\[([^\[\]]*)\]", r"\1", body)  # "4 GB [RAM] Tuning": implied words
    body = " ".join(body.split()).strip(" ,")
    if not _ACRONYM.match(acronym) or not body:
        return None
    return acronym, body, context


class VeraSource(DictdSource):
    """Acronym expansions from V.E.R.A."""

    name = "vera"

    def info(self) -> SourceInfo:
        return SourceInfo(
            name=self.name,
            title="V.E.R.A. - Virtual Entity of Relevant Acronyms",
            version="Debian dict-vera 1:1.24-1 (August 2020)",
            licence="GFDL-1.1-or-later",
            url="https://www.gnu.org/software/vera/",
            attribution="V.E.R.A., Oliver Heidelbach",
        )

    def facts(self, skips: SkipLog) -> Iterator[Fact]:
        grouped: dict[str, list[tuple[str, list[str]]]] = {}
        for acronym, expansion, context in self.parsed_entries(skips, parse_entry):
            if not _EXPANSION_OK.match(expansion) or len(expansion.split()) > 10:
                skips.skip(self.name, "odd_expansion", f"{acronym}: {expansion}")
                continue
            if english_ratio(expansion) < 0.6:
                skips.skip(self.name, "not_english", f"{acronym}: {expansion}")
                continue
            if expansion.lower() == acronym.lower():
                skips.skip(self.name, "expansion_is_acronym", acronym)
                continue
            grouped.setdefault(acronym, []).append((expansion, context))
        for acronym, items in grouped.items():
            expansions = list(dict.fromkeys(e for e, _ in items))
            text = " ".join(e + " " + " ".join(c) for e, c in items)
            domain = domain_from_keywords(text, "programming_algorithms")
            if len(expansions) == 1:
                answer = f"{acronym} stands for {expansions[0]}."
            elif len(expansions) <= 3:
                answer = f"{acronym} can stand for {join_names(expansions, 'or')}."
            else:
                answer = (
                    f"{acronym} has several expansions, including {join_names(expansions[:3])}."
                )
            yield Fact(
                acronym, "acronym", answer, domain, self.name, core=", ".join(expansions[:3])
            )
