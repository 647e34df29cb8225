"""A glossary written for celltext where the offline sources are thin.

``celltext/data/glossary/*.yaml`` hold entries for reinforcement learning, computer vision,
NLP and LLMs, MLOps, deep learning and ML fundamentals. Each file::

    domain: reinforcement_learning
    entries:
      - term: replay buffer
        def: a memory of past transitions that an off-policy agent samples from ...
        kind: data structure            # -> kind_of
        acronym: ...                    # -> acronym (what does X stand for?)
        aka: [experience replay memory] # -> other_name
        use: to break the correlation between consecutive updates   # -> purpose
        example: DQN stores ... in a replay buffer.                  # -> example
        part: deep Q-network            # -> part_of

Written by the celltext authors; released with the dataset under CC BY 4.0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml

from celltext.data.clean import sentence_case
from celltext.data.phrasing import cap, define, join_names, subject_phrase, with_article
from celltext.data.schema import DOMAINS, Fact
from celltext.data.sources.base import SkipLog, Source, SourceInfo

GLOSSARY_DIR = Path(__file__).resolve().parent.parent / "glossary"
_KEYS = {"term", "def", "kind", "acronym", "aka", "use", "example", "part"}


class GlossarySource(Source):
    """Facts from the hand-written YAML glossary."""

    name = "glossary"

    def __init__(self, directory: str | Path = GLOSSARY_DIR):
        self.directory = Path(directory)

    def info(self) -> SourceInfo:
        n = len(list(self.directory.glob("*.yaml")))
        return SourceInfo(
            name=self.name,
            title="celltext glossary (hand-written)",
            version=f"celltext glossary, {n} files",
            licence="CC-BY-4.0",
            url="celltext/data/glossary/",
            attribution="written by the celltext authors",
        )

    def available(self) -> bool:
        return self.directory.is_dir()

    def facts(self, skips: SkipLog) -> Iterator[Fact]:
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                skips.skip(self.name, "malformed_file", f"{path.name}: {exc}")
                continue
            domain = data.get("domain")
            if domain not in DOMAINS:
                skips.skip(self.name, "unknown_domain", f"{path.name}: {domain}")
                continue
            for entry in data.get("entries") or []:
                if not isinstance(entry, dict) or not entry.get("term") or not entry.get("def"):
                    skips.skip(self.name, "malformed_entry", str(entry)[:80])
                    continue
                unknown = set(entry) - _KEYS
                if unknown:
                    skips.skip(self.name, "unknown_key", f"{entry['term']}: {sorted(unknown)}")
                    continue
                yield from entry_facts(entry, entry.get("domain", domain))


def entry_facts(entry: dict, domain: str) -> Iterator[Fact]:
    """The facts of one glossary entry."""
    src = "glossary"
    term, gloss = str(entry["term"]).strip(), str(entry["def"]).strip()
    countable = gloss.lower().startswith(("a ", "an "))
    xa = with_article(term) if countable and not term[:1].isupper() else term
    slots = {"xa": xa}
    yield Fact(
        term,
        "definition",
        define(term, gloss, add_article=False),
        domain,
        src,
        slots=slots,
        core=gloss,
    )
    head = cap(subject_phrase(term, gloss))
    if entry.get("kind"):
        kind = str(entry["kind"])
        answer = sentence_case(f"{head} is a kind of {kind}")
        yield Fact(term, "kind_of", answer, domain, src, slots=slots, core=kind)
    if entry.get("acronym"):
        acr = str(entry["acronym"])
        answer = f"{acr} stands for {term}."
        yield Fact(acr, "acronym", answer, domain, src, core=term, meta={"expansion": term})
    if entry.get("aka"):
        names = [str(a) for a in entry["aka"]][:3]
        answer = sentence_case(f"{cap(term)} is also called {join_names(names, 'or')}")
        yield Fact(term, "other_name", answer, domain, src, core=", ".join(names))
    if entry.get("use"):
        use = str(entry["use"]).strip()
        answer = sentence_case(f"{head} is used {use}")
        yield Fact(term, "purpose", answer, domain, src, slots=slots, core=use)
    if entry.get("example"):
        example = sentence_case(str(entry["example"]))
        yield Fact(
            term, "example", example, domain, src, style="instance", slots=slots, core=example
        )
    if entry.get("part"):
        part = str(entry["part"])
        answer = sentence_case(f"{head} is part of {with_article(part)}")
        yield Fact(term, "part_of", answer, domain, src, slots=slots, core=part)
