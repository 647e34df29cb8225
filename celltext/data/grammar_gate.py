"""The build's grammar gate: repair what :mod:`celltext.data.grammar` flags, drop the rest.

Each code of :data:`celltext.data.grammar.CODES` has one mechanical repair:

- ``article_before_*`` (mass nouns, fields, methods, names, plurals, non-nouns): the article
  goes ("A gradient descent is" -> "Gradient descent is");
- ``missing_article``: the article the subject's sound takes is added ("Necktie is" ->
  "A necktie is");
- ``wrong_indefinite_article``: a <-> an ("a extension" -> "an extension");
- ``plural_subject_singular_verb`` / ``singular_subject_plural_verb``: the verb agrees.

An answer is kept only if the checker finds nothing once the repairs are made; the others
are dropped and counted, so a release built with the gate has 0 flagged answers by
construction and its manifest says how many were repaired and dropped, per code. The
checker's own precision and recall are held against a hand-labelled sample
(``data/review/grammar_sample_v1.csv``, ``tests/data/test_grammar.py``); what it misses, the
gate cannot repair: the release's hand-graded sample (``data/review/``) measures that.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import Any

from celltext.data.grammar import (
    CONTEXT_PREFIX,
    OPENING_PATTERN,
    Problem,
    check_answer,
    release_lexicon,
)
from celltext.data.wordlists import Lexicon, article_for

_VERB_AGREEMENT = {
    "plural_subject_singular_verb": {"is": "are", "was": "were"},
    "singular_subject_plural_verb": {"are": "is", "were": "was"},
}
_FIXED = re.compile(r'-> "(?P<article>an?|An?) (?P<word>[^"]+)"$')


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower_first(text: str, subject: str) -> str:
    """The subject written inside a sentence: "Necktie" -> "necktie", "Brazil" stays."""
    return text[:1].lower() + text[1:] if subject[:1].islower() else text


def _fix_opening(answer: str, problem: Problem, subject: str | None) -> str | None:
    """``answer`` with the problem of its opening phrase repaired, or None."""
    context = CONTEXT_PREFIX.match(answer)
    head = context.group(0) if context else ""
    body = answer[len(head) :]
    pattern = re.escape(subject) if subject else r"[^,;:]{1,60}?"
    m = re.match(OPENING_PATTERN.format(subject=pattern), body, re.I | re.S)
    if m is None:
        return None
    name, verb = m.group(2), m.group(3)
    rest = body[m.end(3) :]
    if problem.code in _VERB_AGREEMENT:
        fixed = _VERB_AGREEMENT[problem.code].get(verb.lower())
        if fixed is None:
            return None
        return head + body[: m.start(3)] + fixed + rest
    if problem.code == "missing_article":
        if (subject or name)[:1].islower() and re.search(r"\s[A-Z]", name):
            return None  # "Musical Instrument Digital Interface": a name, whatever the pair says
        lowered = _lower_first(name, subject or name.lower())
        article = article_for(lowered.split()[0])
        if article is None:
            return None
        phrase = f"{article} {lowered}"
        return head + (phrase if head else _upper_first(phrase)) + body[m.end(2) :]
    if problem.code.startswith("article_before_"):
        if not m.group(1):
            return None
        phrase = name if head else _upper_first(name)
        return head + phrase + body[m.end(2) :]
    return None


def _fix_article(answer: str, problem: Problem) -> str | None:
    """``answer`` with one wrong indefinite article swapped (its first occurrence)."""
    m = _FIXED.search(problem.message)
    if m is None:
        return None
    want, word = m.group("article"), m.group("word")
    other = {"a": "an", "an": "a", "A": "An", "An": "A"}[want]
    found = re.search(rf"(?<![\w'-]){other} {re.escape(word)}", answer)
    if found is None:
        return None
    return answer[: found.start()] + want + answer[found.start() + len(other) :]


def repair_answer(
    answer: str,
    subject: str | None = None,
    qtype: str | None = None,
    lexicon: Lexicon | None = None,
) -> tuple[str | None, list[Problem]]:
    """``(repaired answer, problems found)``: the answer itself when the checker finds
    nothing, a repaired answer that it passes, or None when a repair fails or the repaired
    answer is still flagged (up to three rounds: one repair can reveal another)."""
    problems = check_answer(answer, subject, qtype, lexicon)
    found = list(problems)
    text: str | None = answer
    for _ in range(3):
        if not problems:
            return text, found
        for problem in problems:
            if problem.code == "wrong_indefinite_article":
                text = _fix_article(text, problem)
            else:
                text = _fix_opening(text, problem, subject)
            if text is None:
                return None, found
        problems = check_answer(text, subject, qtype, lexicon)
    return (text if not problems else None), found


def declared_nouns(cfg: Any) -> dict[str, str]:
    """The noun kinds the glossary of build config ``cfg`` declares (empty without one)."""
    from celltext.data.sources.factories import SOURCE_FACTORIES

    if "glossary" not in cfg.sources:
        return {}
    return SOURCE_FACTORIES["glossary"](cfg).declared_nouns()


def gate_facts(
    facts: list, dropped: Counter, declared: dict[str, str] | None = None
) -> tuple[list, dict[str, Any]]:
    """The facts whose answers pass the checker, repaired where they can be; ``dropped``
    gets a ``grammar_unrepaired`` count; ``declared``: the glossary's noun kinds. Returns the
    kept facts and a report (per code: answers repaired and dropped; examples of each)."""
    lex = release_lexicon(facts, declared=declared)
    kept = []
    repaired: Counter = Counter()
    unrepaired: Counter = Counter()
    examples: dict[str, list[dict[str, str]]] = {}
    n_repaired = 0
    for fact in facts:
        text, problems = repair_answer(fact.answer, fact.subject, fact.qtype, lex)
        codes = sorted({p.code for p in problems})
        if text is None:
            unrepaired.update(codes)
            dropped["grammar_unrepaired"] += 1
            continue
        if text != fact.answer:
            repaired.update(codes)
            n_repaired += 1
            shown = examples.setdefault("+".join(codes), [])
            if len(shown) < 3:
                shown.append({"before": fact.answer, "after": text})
            core = text if fact.core == fact.answer else fact.core  # a core has no subject
            fact = replace(fact, answer=text, core=core)
        kept.append(fact)
    report = {
        "checked": len(facts),
        "repaired": n_repaired,
        "repaired_per_code": dict(repaired.most_common()),
        "dropped": len(facts) - len(kept),
        "dropped_per_code": dict(unrepaired.most_common()),
        "examples": examples,
    }
    return kept, report
