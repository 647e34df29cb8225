"""Small English helpers for writing answers: articles, third-person verbs, lists."""

from __future__ import annotations

import re

_VOWEL_SOUND_EXCEPTIONS_AN = ("hour", "honest", "honour", "honor", "heir", "mp3", "sql", "fpga")
_CONSONANT_SOUND_EXCEPTIONS_A = ("uni", "use", "usu", "uti", "euro", "one", "once", "ubi", "ura")
_ARTICLES = ("a ", "an ", "the ", "any ", "some ", "one ", "each ", "every ", "this ")
_LETTER_NAMES = re.compile(r"^[A-Z]{2,}[a-z]")
_DETERMINER = re.compile(r"^(a|an|the|any|some|one|each|every|this|that|its|his|her)\b", re.I)


def a_or_an(word: str) -> str:
    """``"a"`` or ``"an"`` for ``word`` (by sound, approximately)."""
    w = word.lower()
    if not w:
        return "a"
    if w.startswith(_VOWEL_SOUND_EXCEPTIONS_AN):
        return "an"
    if w.startswith(_CONSONANT_SOUND_EXCEPTIONS_A):
        return "a"
    letters = word.split()[0] if word.split() else word
    # Acronyms read letter by letter: "an FPGA", "an LSTM", "a GPU", and mixed-case ones
    # that open with two capitals: "an MLOps tool", "an XGBoost model", "an LLMs survey".
    # (The mixed-case rule changes no answer or question of release v1: every word the v1
    # sources pass here was checked.)
    if (letters.isupper() and len(letters) > 1 and letters.isalpha()) or _LETTER_NAMES.match(
        letters
    ):
        return "an" if letters[0] in "AEFHILMNORSX" else "a"
    if len(w) > 1 and w[1] in "-_" and w[0].isalpha():  # "an n-step return", "a k-d tree"
        return "an" if w[0] in "aefhilmnorsx" else "a"
    return "an" if w[0] in "aeiou" or (w[0] == "8") else "a"


def starts_with_determiner(phrase: str) -> bool:
    """Whether ``phrase`` already begins with an article or other determiner."""
    return bool(_DETERMINER.match(phrase.strip()))


def with_article(noun: str) -> str:
    """``"an algorithm"`` for ``"algorithm"``; names, plurals-looking and acronyms unchanged."""
    if starts_with_determiner(noun) or noun[:1].isupper() or noun[:1].isdigit():
        return noun
    return f"{a_or_an(noun)} {noun}"


def subject_phrase(subject: str, gloss: str) -> str:
    """How to name ``subject`` at the start of a definition whose body is ``gloss``.

    A countable gloss ("a precise rule ...") makes a countable subject ("An algorithm"); a
    mass or proper gloss leaves the subject bare ("Backpropagation", "Python").
    """
    g = gloss.strip().lower()
    countable = g.startswith(("a ", "an ", "someone ", "something ", "somebody ", "one who "))
    if countable and not subject[:1].isupper() and not subject[:1].isdigit():
        return f"{a_or_an(subject)} {subject}"
    return subject


# How a glossary subject is used in a sentence (the glossary's ``noun`` key): ``count`` takes
# a/an, ``mass`` and ``proper`` stand bare, ``plural`` takes "are", ``definite`` takes "the".
NOUN_KINDS: tuple[str, ...] = ("count", "mass", "plural", "proper", "definite")


def noun_phrase(term: str, noun: str) -> str:
    """``term`` inside a sentence: "a replay buffer", "the chain rule", "spaCy", "feature maps"."""
    if noun == "count":
        return f"{a_or_an(term)} {term}"
    if noun == "definite":
        return f"the {term}"
    return term


def cannot_open(term: str, noun: str) -> bool:
    """Whether ``term`` cannot open a sentence as written: a proper name that starts in lower
    case ("spaCy", "pickle", "gRPC") must not be capitalised, and a bare term that starts
    with a digit ("3D reconstruction") has no capital to give. (An answer opens with a
    capital: :func:`celltext.data.quality.well_formed`.) Names keep their case everywhere."""
    if noun not in ("mass", "plural", "proper"):
        return False  # "A 3D convolution", "The 3D ..."
    return term[:1].isdigit() or (noun == "proper" and term[:1].islower())


def sentence_head(term: str, noun: str, field: str = "") -> str:
    """``term`` opening a sentence: "A replay buffer", "The chain rule", "BERT".

    A term that :func:`cannot_open` a sentence is led in by its field instead: "In NLP,
    spaCy", "In computer vision, 3D reconstruction" ("The term spaCy" without a field).
    """
    if cannot_open(term, noun):
        return f"In {field}, {term}" if field else f"The term {term}"
    return cap(noun_phrase(term, noun))


def cap(text: str) -> str:
    """First letter upper-cased (the rest unchanged)."""
    return text[:1].upper() + text[1:] if text else text


_IRREGULAR = {"be": "is", "have": "has", "do": "does", "go": "goes"}


def third_person(verb: str) -> str:
    """``return`` -> ``returns``, ``apply`` -> ``applies``, ``pass`` -> ``passes``."""
    v = verb.lower()
    if v in _IRREGULAR:
        return _IRREGULAR[v]
    if re.search(r"(s|sh|ch|x|z|o)$", v):
        return verb + "es"
    if re.search(r"[^aeiou]y$", v):
        return verb[:-1] + "ies"
    return verb + "s"


def join_names(names: list[str], conj: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    names = [n for n in names if n]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + f" {conj} " + names[-1]


_SELF_START = re.compile(r"^(it|this|they)\b", re.I)
# Verbs that open dictionary glosses in the third person ("Adds ...", "Provides ...").
_GLOSS_VERBS = frozenset(
    "add provide allow use make run support implement describe define contain generate "
    "convert compute produce perform create represent return translate manage control "
    "connect display enable extend store transfer send receive replace measure refer".split()
)


def _third_person_verb(word: str) -> bool:
    w = word.lower()
    return len(w) > 3 and w.endswith("s") and (w[:-1] in _GLOSS_VERBS or w[:-2] in _GLOSS_VERBS)


def define(
    subject: str, gloss: str, verb: str = "is", add_article: bool = True, head: str = ""
) -> str:
    """A definition sentence: ``"An algorithm is a precise rule ..."`` from a gloss.

    ``gloss`` is the body of the definition (one or two clean sentences). If it already
    starts with the subject ("SMT is ...") it is kept as it is; a gloss that starts with
    ``to`` (a verb) becomes ``"To run means to ..."`` style text. ``head`` names the subject
    at the start of the sentence when the caller knows how ("The chain rule", "Feature
    maps"); without it the article is guessed from the gloss (:func:`subject_phrase`).
    """
    from celltext.data.clean import lower_first, sentence_case

    gloss = gloss.strip()
    low = gloss.lower()
    for article in ("", "a ", "an ", "the "):
        if low.startswith(article + subject.lower() + " "):  # "A fractal is ..." as gloss
            return _fit(sentence_case(gloss), "")
    named = head or cap(subject)
    if _SELF_START.match(gloss):  # "It is ..." -> "Subject is ..."
        return sentence_case(_SELF_START.sub(named, gloss, count=1))
    if low.startswith("to "):
        return sentence_case(f"{named} means {lower_first(gloss)}")
    context = re.match(r"^(in|for|within) ([^,]{3,60}), (.+)$", gloss, re.I)
    if context:  # "In policy gradient methods, a value ..." -> "In ..., a baseline is a value ..."
        rest = context.group(3)
        inner = define(subject, rest, verb, add_article, head)
        return sentence_case(
            f"{context.group(1)} {context.group(2)}, {lower_first(inner, subject)}"
        )
    first = gloss.split(" ", 1)[0]
    if _third_person_verb(first):  # "Adds a Prolog layer to Modula-2." -> "X adds ..."
        return sentence_case(f"{named} {first.lower()} {gloss.split(' ', 1)[1]}")
    gloss = lower_first(gloss, hint=subject)
    head = head or cap(subject_phrase(subject, gloss))
    body = article_for_bare_noun_phrase(gloss) if add_article else gloss
    answer = sentence_case(f"{head} {verb} {body}")
    return _fit(answer, f"{head} {verb} ")


def _fit(answer: str, prefix: str) -> str:
    """Drop the second sentence when the answer exceeds the token budget."""
    from celltext.data.clean import MAX_ANSWER_TOKENS, split_sentences, token_count

    if token_count(answer) <= MAX_ANSWER_TOKENS:
        return answer
    sentences = split_sentences(answer)
    return sentences[0] if len(sentences) > 1 else answer


# Mass nouns and other heads that read well without "a" ("Software that ...").
_MASS = frozenset(
    "software hardware code data information text memory storage equipment research traffic "
    "support access communication computing programming output input feedback knowledge "
    "music money water light heat energy power noise mail jargon slang".split()
)


def article_for_bare_noun_phrase(gloss: str) -> str:
    """``"provider of tools"`` -> ``"a provider of tools"``; others unchanged.

    Dictionary glosses of countable nouns often drop the article; add it back when the
    gloss starts with an ordinary lower-case word that is not a determiner, a verb form,
    a plural or a mass noun.
    """
    first = gloss.split(" ", 1)[0]
    bare = first.lower().strip(",")
    if (
        not first[:1].islower()
        or starts_with_determiner(gloss)
        or bare in _MASS
        or bare.endswith(("ed", "ing", "ly", "s"))
        or bare in {"used", "to", "of", "in", "on", "for", "not", "one", "both", "either"}
        or bare in {"someone", "something", "somebody", "anyone", "anything", "everything"}
    ):
        return gloss
    return f"{a_or_an(first)} {gloss}"
