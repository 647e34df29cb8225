"""Reading dictionary glosses: the head noun phrase, plural glosses, kind-of hypernyms
that read wrong, short qualifiers from an entry, and crude stems for comparing glosses.

Used by :mod:`celltext.data.sources.senses` to tell word senses apart; plain string
heuristics, tuned on WordNet 3.0 and FOLDOC glosses.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_STOP = frozenset(
    "of that which who whose whom where when with within in on for from by to as at "
    "between into like than about over under after before during without against upon "
    "via".split()
)
_PARTICIPLES = frozenset(
    "made built done written known held found given taken worn kept similar specific".split()
)
_POSTMODIFIER = ("ed", "ing", "ible", "able", "ous", "ful")
# "-ing" words that begin compound nouns ("operating system"), not participle phrases.
_ING_NOUNS = frozenset(
    """operating programming processing computing learning networking rendering training
    parsing typesetting engineering modeling modelling scripting sorting routing mapping
    matching imaging tracing timing building testing caching rewriting logging
    spelling""".split()
)
# Adjectives that say nothing about which sense is meant ("an early system").
_VAGUE = frozenset("early simple small large new old general popular common famous".split())
_MODIFIERS = frozenset(
    """having bearing producing containing consisting resembling belonging including using
    lacking living growing yielding forming occurring characterized used""".split()
)
_SINGULAR_START = re.compile(
    r"^(a|an|the|one|any|each|every|either|someone|something|somebody|anything)\b", re.I
)
_ATTRIBUTION = re.compile(r"(?:\s*;)+\s*-+\s*[A-Z][^;]*$")  # "great wealth; --Ben Jonson"
# "X is the square root of the variance" is not a kind of variance (and "the part of the
# day" is not a kind of day): a measure, function or part of the hypernym.
_NOT_A_KIND = frozenset(
    """root square reciprocal logarithm inverse derivative integral sum product ratio
    quotient difference mean average median multiple power remainder proportion
    percentage fraction rate value values number amount degree level measure limit
    maximum minimum part parts portion segment side end top bottom edge half quarter
    remains start""".split()
)


def strip_attribution(gloss: str) -> str:
    """A gloss without the trailing author of a quoted example ("; --Ben Jonson")."""
    return _ATTRIBUTION.sub("", gloss).rstrip(" ;")


def head_phrase(gloss: str, strict: bool = False) -> list[str]:
    """The words of a gloss's head noun phrase, up to the first preposition, relative
    pronoun, apposition or punctuation other than a comma, or participle before a
    preposition ("coins made of gold" -> ``["coins"]``; "an operating system from Acorn"
    -> ``["an", "operating", "system"]``; "a simple, high-level language" -> ``["a",
    "simple", "high-level", "language"]``). ``strict`` also ends it at a later "-ing"
    word that is not a compound's first word ("assembly possessing high legislative
    powers" -> ``["assembly"]``)."""
    words = re.findall(r"[A-Za-z0-9][\w'/-]*|[^\w\s]", gloss)
    out: list[str] = []
    for i, word in enumerate(words):
        low = word.lower()
        after, then = (w.lower() for w in [*words[i + 1 : i + 3], "", ""][:2])
        if word == ",":
            if after in ("the", "a", "an", "and", "or", "which", "who"):
                break  # "an extensible language, the core of PARSEC"
            continue
        if low in _STOP or not word[0].isalnum() or (low in ("and", "or") and not out):
            break
        if out and after in _STOP and (low in _PARTICIPLES or low.endswith(_POSTMODIFIER)):
            break  # "made of", "developed by", "responsible for", "similar to"
        # "-ing" before two more words of the phrase: "language supporting imperative
        # programming"; before the last one it begins a compound: "conferencing service"
        ing = strict and low.endswith("ing") and low not in _ING_NOUNS
        if out and (low in _MODIFIERS or (ing and then[:1].isalnum() and then not in _STOP)):
            break  # "a tree having ...", "grass bearing kernels"
        out.append(word)
    while out and out[-1].lower() in ("and", "or"):
        out.pop()
    return out


def plural_gloss(gloss: str, is_plural: Callable[[str], bool]) -> bool:
    """Whether a gloss defines a plural ("coins made of gold", "large Old World boas"):
    its head noun is a plural and nothing ("a", "any of", "one of") makes it singular."""
    if _SINGULAR_START.match(gloss.strip()) or re.match(r"^\w+ing\b", gloss.strip()):
        return False  # "a ...", "any of ...", or a gerund ("buying or selling securities")
    head = head_phrase(gloss, strict=True)
    for i, word in enumerate(head):  # before a coordination: "brave and heroic feats"
        if word.lower() in ("and", "or"):
            head = head[:i]
            break
    return bool(head) and is_plural(head[-1].lower())


def other_form_label(label: str | None) -> bool:
    """A usage label saying that the gloss is of another form ("(usually plural)")."""
    return bool(label) and "plural" in label


def kind_reads_wrong(gloss: str, hypernym_names: list[str]) -> bool:
    """Whether "X is a kind of <hypernym>" misreads a gloss that makes X a measure, function
    or part *of* the hypernym ("the square root of the variance")."""
    head = [w.lower() for w in head_phrase(gloss)]
    if head and any(head[-1] == n.lower().split()[-1] for n in hypernym_names):
        return False  # "a human limb; ... technically only the part of the limb"
    low = gloss.lower()
    for name in hypernym_names:
        pattern = r"\b([a-z-]+) of (?:the |a |an )?" + re.escape(name.lower()) + r"s?\b"
        if any(m.group(1) in _NOT_A_KIND for m in re.finditer(pattern, low)):
            return True
    return False


def entry_qualifier(gloss: str, fallback: str, word: str = "") -> str:
    """A short qualifier from a dictionary entry's gloss: the last two words of its head
    noun phrase when the gloss is a noun phrase ("An operating system from Acorn ..." ->
    "operating system"; "An early business language" -> "business language"), else
    ``fallback``."""
    if not re.match(r"^(a|an|the)\s", gloss.strip(), re.I):
        return fallback
    words = [w for w in head_phrase(gloss, strict=True)[1:] if w[:1].isalpha() and w.isascii()]
    for i in range(len(words) - 1, -1, -1):  # "the alias or role" -> "role"
        if words[i].lower() in ("and", "or"):
            words = words[i + 1 :]
            break
    words = [w if w.isupper() or w[1:].isupper() else w.lower() for w in words]
    words = [w for w in words if w != "'s"][-2:]
    if len(words) == 2 and words[0] in _VAGUE:
        words = words[1:]
    qualifier = " ".join(words)
    return qualifier if qualifier and qualifier != word.lower() else fallback


_WORD = re.compile(r"[a-z0-9]+")
_WEAK = frozenset(
    """the and or but not its his her their this that these those with without which who
    whom whose what when where how for from into onto upon over under about also usually
    especially often other others such etc one two some any all each every more most less
    used using use being been are was were has have had can may might will would should
    very many much made make makes thing things something someone type kind form part
    example""".split()
)


def stems(text: str) -> set[str]:
    """Crude stems of the content words of ``text`` (first six letters, no plural s)."""
    out = set()
    for word in _WORD.findall(text.lower()):
        if len(word) < 3 or word in _WEAK or word in _STOP:
            continue
        out.add(word.rstrip("s")[:6] if len(word) > 3 else word)
    return out
