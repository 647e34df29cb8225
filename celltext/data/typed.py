"""Questions as people type them into a chat box: lower case, no question mark, a typo.

The release's templates are written questions ("What is gradient descent?"); users type
"whats gradiant descent". :func:`as_typed` rewrites a question with the surface noise of
typing (never its words' meaning), so the ranker learns on typed questions and the selector
is calibrated on them (``typed_rate`` in :mod:`celltext.training.rank` and
:mod:`celltext.inference.calibrate`). Everything is drawn from the caller's ``rng``, so a
seed gives the same rewrites.

The noise model (each step independent): lower case (p 0.7), the question mark dropped
(0.6), "what is" / "what's" contracted to "whats" (0.3), one typo in a word of four or more
letters that is not an acronym or a dotted code name (0.35: two letters swapped, one
dropped, one doubled, or a neighbour key on a QWERTY keyboard); a definition question
sometimes becomes its bare subject (:func:`as_typed`).
"""

from __future__ import annotations

import random
import re

_QWERTY = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _row_i, _row in enumerate(_QWERTY):
    for _col, _key in enumerate(_row):
        near = _row[max(_col - 1, 0) : _col] + _row[_col + 1 : _col + 2]
        for _other in (_row_i - 1, _row_i + 1):
            if 0 <= _other < len(_QWERTY):
                near += _QWERTY[_other][max(_col - 1, 0) : _col + 1]
        _NEIGHBOURS[_key] = near
_WORD = re.compile(
    r"(?<![\w.])[A-Za-z][a-z]{3,}(?![\w.(])"
)  # a word, not an acronym or a code name
_WHAT_IS = re.compile(r"\bwhat(?: is|'s)\b", re.I)


def typo(word: str, rng: random.Random) -> str:
    """``word`` with one typing error: a swap, a drop, a double or a neighbour key."""
    i = rng.randrange(1, len(word) - 2)  # keep the first and last letters (people do)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    near = _NEIGHBOURS.get(word[i].lower(), "")
    return word[:i] + rng.choice(near) + word[i + 1 :] if near else word


CONTEXT = {
    "ai_ml_fundamentals": ("in ml", "machine learning"), "deep_learning": ("in deep learning",
    "neural nets"), "nlp_llm": ("in nlp", "llm"), "computer_vision": ("in cv", "vision"),
    "reinforcement_learning": ("in rl", "reinforcement learning"), "mlops_engineering": (
    "mlops", "in ml engineering"), "programming_algorithms": ("in programming", "python"),
    "math_statistics": ("in math", "statistics"), "general_knowledge": ("",),
}  # fmt: skip
"""Words people add to a bare term to say which field they mean ("grokking in nns")."""


def as_typed(
    question: str, rng: random.Random, subject: str | None = None, domain: str = ""
) -> str:
    """``question`` with typing noise (see the module docstring); never empty. ``subject``:
    the question asks what this subject is (a definition), and people often type the bare
    term ("mask rcnn?", "grokking in nns"): with p 0.25 the question becomes the subject,
    half of those times with its field's words (:data:`CONTEXT` of ``domain``), sometimes
    with a question mark, before the noise."""
    text = question.strip()
    if subject and rng.random() < 0.25:
        text = re.sub(r"\s*\([^)]*\)$", "", subject)
        context = rng.choice(CONTEXT.get(domain, ("",))) if rng.random() < 0.5 else ""
        text = f"{text} {context}".strip() + rng.choice(("", "?", " ?"))
    if rng.random() < 0.3:
        text = _WHAT_IS.sub("whats", text)
    if rng.random() < 0.35:
        words = list(_WORD.finditer(text))
        if words:
            m = rng.choice(words)
            text = text[: m.start()] + typo(m.group(), rng) + text[m.end() :]
    if rng.random() < 0.7:
        text = text.lower()
    if rng.random() < 0.6:
        text = text.rstrip("?").rstrip()
    return text or question
