"""A glossary written for celltext where the offline sources are thin.

``celltext/data/glossary/*.yaml`` hold entries for reinforcement learning, computer vision,
NLP and LLMs, MLOps, deep learning and ML fundamentals (release v1); sub-folders such as
``glossary/v2/`` add later subjects and are read only when a build asks for them. Each
file::

    domain: reinforcement_learning
    entries:
      - term: replay buffer
        noun: count                     # how the term is used in a sentence (below)
        def: a memory of past transitions that an off-policy agent samples from ...
        kind: data structure            # -> kind_of
        acronym: ...                    # -> acronym (what does X stand for?)
        aka: [experience replay memory] # -> other_name
        use: to break the correlation between consecutive updates   # -> purpose
        example: DQN stores ... in a replay buffer.                  # -> example
        part: deep Q-network            # -> part_of

``noun`` (required in sub-folders, optional at the top level) is one of
:data:`celltext.data.phrasing.NOUN_KINDS`:

* ``count``: "What is a replay buffer?" / "A replay buffer is ...";
* ``mass``: "Gradient descent is ...";
* ``plural``: "Feature maps are ...", "Support vectors are a kind of training point.";
* ``proper``: a name, kept verbatim ("BERT is ...", "What is spaCy?");
* ``definite``: a unique thing that takes "the" ("The central limit theorem is ...").

A name written with a lower-case first letter ("spaCy", "pickle", "gRPC") is never
capitalised, and a bare term that starts with a digit ("3D reconstruction") has no capital;
an answer must open with one, so such a term is led in by its field: "In NLP, spaCy is an
open-source ...", "In computer vision, 3D reconstruction is a kind of ..." (an acronym:
"The abbreviation mIoU stands for ...").

An entry without ``noun`` (the v1 files) gets the article guessed from its definition, as
release v1 was built. A top-level ``noun`` is read only with ``top_level_nouns`` (the
build's ``glossary_top_level_nouns``), so annotating the v1 files changes no v1 rebuild.

A sub-folder entry whose term repeats an earlier term is skipped and counted
(``duplicate_term``; repeats within the top level are settled by the build's one fact per
subject and type, as in v1). An acronym written exactly as an earlier one gets both
expansions in one answer ("MAE can stand for masked autoencoder or mean absolute error.");
one that differs only in case ("MAP" after "mAP") is skipped and counted. Entries with a
``noun`` are also asked about by their other names (:func:`alias_facts`).

Written by the celltext authors; released with the dataset under CC BY 4.0.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from celltext.data.clean import common_words, sentence_case
from celltext.data.phrasing import (
    NOUN_KINDS,
    cannot_open,
    cap,
    define,
    join_names,
    noun_phrase,
    sentence_head,
    subject_phrase,
    with_article,
)
from celltext.data.schema import DOMAINS, Fact
from celltext.data.sources.base import SkipLog, Source, SourceInfo
from celltext.data.splits import subject_key

GLOSSARY_DIR = Path(__file__).resolve().parent.parent / "glossary"
_KEYS = {"term", "noun", "def", "kind", "acronym", "aka", "use", "example", "part"}
SRC = "glossary"
_CONTEXT = re.compile(r"^(in|for|within) ([^,]{3,60}), ", re.I)  # as celltext.data.phrasing.define


@dataclass(frozen=True)
class Naming:
    """How a glossary subject is named in questions and answers."""

    slots: dict[str, str]  # template slots: "xa" ("a replay buffer"), verbatim "X"/"Xa" for names
    head: str  # opening an answer: "A replay buffer", "The chain rule", "Feature maps"
    verb: str = "is"  # "are" for plurals
    style: str = "noun"  # template style: "plural" for plurals
    noun: str | None = None  # the entry's noun kind (None: a v1 entry, articles guessed)
    led_in: bool = False  # head is "In NLP, spaCy": the term cannot open a sentence


# How a domain is named in a lead-in: "In NLP, spaCy is ..."
FIELDS = {
    "ai_ml_fundamentals": "machine learning",
    "deep_learning": "deep learning",
    "nlp_llm": "NLP",
    "computer_vision": "computer vision",
    "reinforcement_learning": "reinforcement learning",
    "mlops_engineering": "MLOps",
    "math_statistics": "mathematics",
    "programming_algorithms": "programming",
}


def naming(term: str, gloss: str, noun: str | None, domain: str = "") -> Naming:
    """The :class:`Naming` of ``term``; without ``noun`` the article is guessed from the
    definition ("a ..." makes a countable subject), as in release v1."""
    if noun is None:
        countable = gloss.lower().startswith(("a ", "an "))
        xa = with_article(term) if countable and not term[:1].isupper() else term
        return Naming({"xa": xa}, cap(subject_phrase(term, gloss)))
    slots = {"xa": noun_phrase(term, noun)}
    if noun == "proper":  # "{Xa} is a type of what?" -> "spaCy is a type of what?"
        slots |= {"X": term, "Xa": term}
    plural = noun == "plural"
    head = sentence_head(term, noun, FIELDS.get(domain, ""))
    style = "plural" if plural else "noun"
    return Naming(slots, head, "are" if plural else "is", style, noun, cannot_open(term, noun))


class GlossarySource(Source):
    """Facts from the hand-written YAML glossary (the top-level files, then ``subdirs``)."""

    name = SRC

    def __init__(
        self,
        directory: str | Path = GLOSSARY_DIR,
        subdirs: tuple[str, ...] = (),
        top_level_nouns: bool = False,
    ):
        self.directory = Path(directory)
        self.subdirs = tuple(subdirs)
        # release v1 guessed every top-level article: a noun added there later is read only
        # when asked for, so a rebuild of v1 stays what it was
        self.top_level_nouns = top_level_nouns

    def files(self) -> list[tuple[Path, bool]]:
        """``(path, is_later)`` for every file read, top level first."""
        out = [(p, False) for p in sorted(self.directory.glob("*.yaml"))]
        for sub in self.subdirs:
            out += [(p, True) for p in sorted((self.directory / sub).glob("*.yaml"))]
        return out

    def info(self) -> SourceInfo:
        return SourceInfo(
            name=self.name,
            title="celltext glossary (hand-written)",
            version=f"celltext glossary, {len(self.files())} files",
            licence="CC-BY-4.0",
            url="celltext/data/glossary/",
            attribution="written by the celltext authors",
        )

    def available(self) -> bool:
        return self.directory.is_dir() and all((self.directory / s).is_dir() for s in self.subdirs)

    def entries(self, skips: SkipLog) -> Iterator[tuple[dict, str]]:
        """Valid ``(entry, domain)`` pairs; the others are counted in ``skips``."""
        terms: set[str] = set()
        for path, later in self.files():
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
                reason = _invalid(entry, later)
                if reason is None and later and subject_key(str(entry["term"])) in terms:
                    reason = "duplicate_term"  # (release v1 kept its one repeat, see build)
                if reason is not None:
                    skips.skip(self.name, reason, _describe(entry, path))
                    continue
                terms.add(subject_key(str(entry["term"])))
                if not later and not self.top_level_nouns:
                    entry = {k: v for k, v in entry.items() if k != "noun"}
                yield entry, domain

    def declared_nouns(self) -> dict[str, str]:
        """``{term (lower case): noun kind}`` for the entries read with a ``noun`` key."""
        entries = self.entries(SkipLog())
        return {str(e["term"]).strip().lower(): str(e["noun"]) for e, _ in entries if e.get("noun")}

    def facts(self, skips: SkipLog) -> Iterator[Fact]:
        entries = list(self.entries(skips))
        expansions: dict[str, list[str]] = {}
        for entry, _ in entries:
            if entry.get("acronym"):
                expansions.setdefault(str(entry["acronym"]), []).append(str(entry["term"]))
        cased: dict[str, str] = {}
        for acr in expansions:  # the first spelling wins: "mAP" (v1) before "MAP"
            cased.setdefault(subject_key(acr), acr)
        for entry, domain in entries:
            acr = str(entry.get("acronym") or "")
            if acr and cased[subject_key(acr)] != acr:  # "MAP" after "mAP": another acronym
                skips.skip(self.name, "acronym_case_collision", f"{acr}: {entry['term']}")
                entry = {k: v for k, v in entry.items() if k != "acronym"}
            elif acr and expansions[acr][0] != str(entry["term"]):
                entry = {k: v for k, v in entry.items() if k != "acronym"}  # asked once
            yield from entry_facts(entry, domain, expansions.get(acr))
        yield from alias_facts(entries)


def _invalid(entry, later: bool) -> str | None:
    """Why an entry cannot be used, or None."""
    if not isinstance(entry, dict) or not entry.get("term") or not entry.get("def"):
        return "malformed_entry"
    if set(entry) - _KEYS:
        return "unknown_key"
    if "noun" in entry and entry["noun"] not in NOUN_KINDS:
        return "unknown_noun"
    if later and "noun" not in entry:
        return "missing_noun"
    return None


def _describe(entry, path: Path) -> str:
    if not isinstance(entry, dict) or not entry.get("term"):
        return str(entry)[:80]
    unknown = sorted(set(entry) - _KEYS)
    extra = f" {unknown}" if unknown else f" (noun: {entry['noun']})" if "noun" in entry else ""
    return f"{path.parent.name}/{path.name}: {entry['term']}{extra}"


def entry_facts(entry: dict, domain: str, expansions: list[str] | None = None) -> Iterator[Fact]:
    """The facts of one glossary entry (``expansions``: every term its acronym stands for)."""
    term, gloss = str(entry["term"]).strip(), str(entry["def"]).strip()
    kind = str(entry.get("kind") or "")
    name = naming(term, gloss, entry.get("noun"), domain)
    slots, head, verb = name.slots, name.head, name.verb
    if name.noun is None:  # release v1's wording, unchanged
        definition = define(term, gloss, add_article=False)
    else:  # a gloss with its own lead-in ("in computer vision, ...") keeps it for a led-in term
        own_context = name.led_in and _CONTEXT.match(gloss)
        definition = define(term, gloss, verb, False, term if own_context else head)
    yield Fact(term, "definition", definition, domain, SRC, name.style, slots=slots, core=gloss)
    if kind:
        answer = sentence_case(f"{head} {verb} a kind of {kind}")
        yield Fact(term, "kind_of", answer, domain, SRC, name.style, slots=slots, core=kind)
    if entry.get("acronym"):
        yield _acronym(str(entry["acronym"]), expansions or [term], domain, name.noun is None)
    if entry.get("aka"):
        names = [str(a) for a in entry["aka"]][:3]
        opener = f"{cap(term)} is" if name.noun is None else f"{head} {verb}"
        answer = sentence_case(f"{opener} also called {join_names(names, 'or')}")
        own = {} if name.noun is None else slots  # v1 gave this type no slots
        yield Fact(term, "other_name", answer, domain, SRC, slots=own, core=", ".join(names))
    if entry.get("use"):
        use = str(entry["use"]).strip()
        answer = sentence_case(f"{head} {verb} used {use}")
        yield Fact(term, "purpose", answer, domain, SRC, name.style, slots=slots, core=use)
    if entry.get("example"):
        example = sentence_case(str(entry["example"]))
        style = "usage" if name.noun == "proper" else "instance"  # not "an example of pip"
        yield Fact(term, "example", example, domain, SRC, style, slots=slots, core=example)
    if entry.get("part"):
        part = str(entry["part"])
        answer = sentence_case(f"{head} {verb} part of {with_article(part)}")
        yield Fact(term, "part_of", answer, domain, SRC, name.style, slots=slots, core=part)


def alias_facts(entries: list[tuple[dict, str]]) -> Iterator[Fact]:
    """Other names asked the other way round, for entries with a ``noun``: "What is another
    name for extra trees?" -> "Extra trees are also called extremely randomised trees."

    An alias that is itself a glossary term, a single ordinary word ("bias", "filter",
    whose everyday sense a dictionary answers better), or one whose number differs from the
    term's (the ``noun`` would not fit it) is not asked about.
    """
    terms = {subject_key(str(e["term"])) for e, _ in entries}
    seen: set[str] = set()
    for entry, domain in entries:
        noun = entry.get("noun")
        if noun is None or not entry.get("aka"):
            continue
        term = str(entry["term"]).strip()
        for alias in [str(a).strip() for a in entry["aka"]][:3]:
            key = subject_key(alias)
            if key in terms or key in seen or key in common_words():
                continue
            if _looks_plural(alias) != _looks_plural(term):  # "missing values" for "missing data"
                continue
            seen.add(key)
            name = naming(alias, str(entry["def"]), noun, domain)
            answer = sentence_case(f"{name.head} {name.verb} also called {term}")
            yield Fact(alias, "other_name", answer, domain, SRC, slots=name.slots, core=term)


def _looks_plural(phrase: str) -> bool:
    last = phrase.split()[-1] if phrase.split() else ""
    return last.endswith("s") and not last.endswith(("ss", "us", "is")) and last[:-1].islower()


def _acronym(acr: str, terms: list[str], domain: str, as_v1: bool = False) -> Fact:
    """ "CNN stands for convolutional neural network." (several: "can stand for A or B"); an
    acronym that cannot open a sentence is introduced: "The abbreviation k-NN stands for"
    (``as_v1``: as release v1 wrote it, where such answers failed the well-formedness check)."""
    opener = acr if as_v1 or acr[:1].isupper() else f"The abbreviation {acr}"
    if len(terms) == 1:
        answer = f"{opener} stands for {terms[0]}."
    else:
        answer = f"{opener} can stand for {join_names(terms, 'or')}."
    meta = {"expansion": " / ".join(terms)}
    return Fact(acr, "acronym", answer, domain, SRC, core=", ".join(terms), meta=meta)
