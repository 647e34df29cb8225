"""Untrusted text checks shared by the HTTP API and the CLI.

JSON may carry ``\\ud800``-style escapes that decode to lone UTF-16 surrogates: valid Python
``str``, but not Unicode text. Such a string cannot be encoded to UTF-8, so it crashes the
tokenizer, the JSON response writer and SQLite, and — inside a shared micro-batch — the
answers of every request batched with it. Every entry point refuses it before any model
work, naming the field (see ``docs/THREAT_MODEL.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SURROGATE = re.compile("[\ud800-\udfff]")
ECHO_CHARS = 200  # longest piece of client input repeated back in an error message


def text_problem(text: str) -> str | None:
    """Why ``text`` is not valid Unicode text, or None when it is."""
    match = _SURROGATE.search(text)
    if match is None:
        return None
    return (
        f"invalid text: lone surrogate U+{ord(match.group()):04X} at character {match.start()} "
        "(not valid Unicode; send UTF-8 text)"
    )


def check_text(text: str) -> str:
    """``text`` unchanged, or ValueError saying what is wrong (a pydantic validator)."""
    problem = text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


def first_text_problem(texts: Iterable[str]) -> tuple[int, str] | None:
    """(index, problem) of the first invalid text, or None."""
    for i, text in enumerate(texts):
        problem = text_problem(text)
        if problem is not None:
            return i, problem
    return None


def safe_echo(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` fit to repeat back: surrogates escaped, cut to ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text)} characters)"
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
