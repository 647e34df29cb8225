"""Typing errors corrected against the phrase bank's own words, before the teacher embeds.

Users type "whats gradiant descent"; the teacher's word pieces of "gradiant" are not those
of "gradient", and the nearest known question drifts. :class:`Speller` replaces a word the
bank's questions, answers and subjects never use by the most frequent bank word one edit
away (a deletion, a transposition, a substitution or an insertion: Norvig, "How to Write a
Spelling Corrector", 2007), and leaves every other word as typed:

- words of fewer than :data:`MIN_LENGTH` letters are kept (short words have many
  neighbours one edit away: "teh" could be "ten", "tea", "the");
- a word that is not lower-case letters (an acronym, ``torch.nn``, a number) is kept;
- a word with no neighbour in the bank is kept.

SymSpell (``symspellpy``) finds the same corrections faster, but its precomputed deletes of
a 50,000-word dictionary hold tens of MB in memory, and one lookup here costs about
0.1 ms per unknown word: only unknown words are looked up.

Shapes: none; texts in, texts out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

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


class Speller:
    """Corrects words the bank never uses (see the module docstring)."""

    def __init__(self, texts: Iterable[str]):
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_WORD.findall(text.lower()))
        self.counts = counts

    def word(self, word: str) -> str:
        """``word`` or its correction (lower-case words of MIN_LENGTH letters and more)."""
        if len(word) < MIN_LENGTH or not word.isalpha() or not word.islower():
            return word
        if word in self.counts:
            return word
        found = [w for w in _edits1(word) if w in self.counts]
        return max(found, key=lambda w: (self.counts[w], w)) if found else word

    def correct(self, text: str) -> str:
        """``text`` with each unknown word corrected; everything else as typed."""
        return _TOKEN.sub(lambda m: self.word(m.group()), text)
