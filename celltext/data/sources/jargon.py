"""The Jargon File 4.4.7 (Debian ``dict-jargon``, public domain): hacker slang.

An entry is the headword, an optional pronunciation and part-of-speech line
(``/sto'p@j/, n.``), and indented paragraphs; the first paragraph may open with an
``[etymology or usage note]`` and numbered senses, of which we keep the first. With
``senses="qualified"`` an entry for a common word whose everyday sense comes first in
WordNet is asked about as "troll (jargon)" (see :mod:`celltext.data.sources.senses`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from celltext.data.clean import first_sentences, strip_markup, usable_extra, usable_gloss
from celltext.data.domains import domain_from_keywords
from celltext.data.phrasing import define
from celltext.data.schema import Fact
from celltext.data.sources.base import SkipLog, SourceInfo
from celltext.data.sources.dictd import DictdSource

_POS = re.compile(r"(?:^|[\s,])(n|adj|v|vt|vi|adv|interj|excl|pl|prep)\.", re.I)
_SENSE = re.compile(r"^\s*\d+\.\s+(?:(?:n|adj|v|vt|vi|adv|interj)\.(?:,\s*\w+\.)*\s+)?")
_SYNONYM = re.compile(r"^(?:Synonym for|Syn\.|Same as|Variant of)\s+\{?([^{}.;,]+)\}?", re.I)
_COMPUTING = re.compile(
    r"\b(program|code|computer|software|hardware|bug|network|file|unix|compiler|byte|bit|"
    r"memory|disk|terminal|system|hacker|operating|keyboard|screen|data|internet|usenet)",
    re.I,
)


# Jargon File part of speech -> WordNet's, for telling its sense apart from WordNet's.
_WORDNET_POS = {"v": "v", "vt": "v", "vi": "v", "adj": "a", "adv": "r"}


def parse_entry(text: str) -> tuple[str, str, str] | None:
    """``(headword, part of speech or "", first paragraph)`` or None when malformed."""
    lines = text.replace("\r", "").split("\n")
    if not lines or not lines[0].strip():
        return None
    head = lines[0].strip()
    rest = lines[1:]
    pos = ""
    if rest and rest[0].strip() and not rest[0].startswith("    "):
        match = _POS.search(rest[0])
        pos = match.group(1).lower() if match else ""
        rest = rest[1:]
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", "\n".join(rest)) if p.strip()]
    paragraphs = [p for p in paragraphs if not re.fullmatch(r"\[[^\]]*\]", p)]
    if not paragraphs:
        return None
    first = re.sub(r"^\[[^\]]*\]\s*", "", paragraphs[0])
    match = _SENSE.match(first)
    if match:
        first = first[match.end() :]
        pos_match = _POS.search(paragraphs[0][:20])
        pos = pos or (pos_match.group(1).lower() if pos_match else "")
    return head, pos, first


class JargonSource(DictdSource):
    """Definitions and synonyms from the Jargon File."""

    name = "jargon"

    def info(self) -> SourceInfo:
        return SourceInfo(
            name=self.name,
            title="The Jargon File",
            version="4.4.7 (Debian dict-jargon 4.4.7-3.1)",
            licence="public domain",
            url="http://catb.org/jargon/",
            attribution="The Jargon File, version 4.4.7, edited by Eric S. Raymond",
        )

    def facts(self, skips: SkipLog) -> Iterator[Fact]:
        for head, pos, para in self.parsed_entries(skips, parse_entry):
            body = strip_markup(para)
            domain = "programming_algorithms" if _COMPUTING.search(body) else "general_knowledge"
            domain = domain_from_keywords(body, domain, ("deep_learning", "ai_ml_fundamentals"))
            synonym = _SYNONYM.match(para)
            if synonym:
                other = strip_markup(synonym.group(1)).strip()
                if other and other.lower() != head.lower():
                    answer = f"{head[:1].upper()}{head[1:]} is another name for {other}."
                    named = self.sense_subject(head, "", "jargon", pos=_WORDNET_POS.get(pos, "n"))
                    yield Fact(named, "other_name", answer, domain, self.name, core=other)
                continue
            gloss = first_sentences(body)
            if not gloss or not usable_gloss(gloss, min_words=3):
                skips.skip(self.name, "gloss_not_a_definition", head)
                continue
            style = "noun" if pos in ("n", "pl", "") else "word"
            verb = "is" if style == "noun" else "means"
            named = self.sense_subject(head, gloss, "jargon", pos=_WORDNET_POS.get(pos, "n"))
            yield Fact(
                named,
                "definition",
                define(head, gloss, verb),
                domain,
                self.name,
                style=style,
                core=gloss,
            )
            for sentence in first_sentences(body, max_tokens=96).split(". ")[1:]:
                if usable_extra(sentence):
                    self._extra.append(sentence)
