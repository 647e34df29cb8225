"""Article and agreement checks for a release's answers.

``check_answer`` reads the opening subject phrase of an answer ("A/An/The <subject>
is/are ...") and every indefinite article in it, and returns the :class:`Problem` s it
finds; ``check_pairs`` runs it over a release's pairs and reports counts per code with
examples. The codes and what each means are in :data:`CODES` (and the rubric
``data/review/GRAMMAR_RUBRIC.md``, which the hand-labelled sample
``data/review/grammar_sample_v1.csv`` follows).

The rules use the word lists in ``celltext/data/wordlists/`` first, then a few
conservative suffix rules, then WordNet evidence (a sense's lexicographer file and how
often a noun is counted in WordNet's glosses). A rule flags only on positive evidence:
a subject it knows nothing about is never flagged.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from celltext.data.wordlists import (
    FIELD_SUFFIXES,
    Lexicon,
    article_for,
    countable,
    is_plural,
    load_lexicon,
    mass_evidence,
    massy,
    senses,
    wordnet,
)

CODES: dict[str, str] = {
    "article_before_mass_noun": 'a/an before a mass noun ("An oxygen is ...")',
    "article_before_field": 'a/an before a field of study ("A reinforcement learning is ...")',
    "article_before_method": 'a/an before a method name ("A gradient descent is ...")',
    "article_before_proper_name": 'a/an before a name ("An awk is an interpreted language")',
    "article_before_acronym": 'a/an before an abbreviation of a name or field ("An NLP is")',
    "article_before_non_noun": 'a/an before an adjective, affix or symbol ("A (TM) is ...")',
    "article_before_plural": 'a/an before a plural ("An indices is ...")',
    "missing_article": 'a singular countable subject without an article ("Hound is a ...")',
    "wrong_indefinite_article": 'a where an is said, or an where a is ("a algorithm")',
    "plural_subject_singular_verb": 'a plural subject with is/was ("Feature maps is ...")',
    "singular_subject_plural_verb": 'a singular subject with are/were ("A feature map are")',
}

# Question types whose answers open with "<subject> is ..."; the others open with a fixed
# template ("X stands for", "The function X", "For example:", "The opposite of").
OPENING_QTYPES = frozenset({"definition", "kind_of", "other_name", "part_of", "purpose"})
CONTEXT_PREFIX = re.compile(r"^(?:in|for|within) [^,]{3,60}, ", re.I)
OPENING_PATTERN = r"^(?:(a|an|the) )?({subject}) (is|are|was|were)\b[ ,]*(.*)$"
# Complements that talk about the word, not the thing ("Distro is another name for ...").
_META = re.compile(
    r"^(?:(?:a|an|the|another|one)\s+)?(?:[\w-]+\s+){0,3}?(?:term|word|name|abbreviation|"
    r"acronym|suffix|prefix|plural|synonym|spelling|shorthand|contraction|nickname|"
    r"adjective|verb|adverb|description|expression|phrase|slang|short\s+for|"
    r"used\s+to\s+(?:signify|describe|mean))\b",
    re.I,
)
_NON_NOUN = re.compile(
    r"^(?:a|an)\s+(?:[\w-]+\s+){0,3}?(?:term\s+(?:describing|meaning|used\s+to\s+describe)|"
    r"description\s+of|adjective|suffix|prefix)\b",
    re.I,
)
_KIND_OF = re.compile(r"^(?:kind|type|form|sort|variety|class|family|variant) of ", re.I)
_STOP = frozenset(
    "of for that which who whose used in to with by from on at where when whereby as "
    "designed developed written based and or is are was were".split()
)
_FUNCTION_WORDS = frozenset("and or of is are to in on at by for the a an as with from".split())
_GERUND_SUFFIX = ("ing",)
_PROCESS_SUFFIXES = ("tion", "sion", "ment", "ance", "ence", "sis", "ing", "al")
_ADJ_SUFFIXES = ("ic", "ous", "ive", "able", "ible", "ful", "less", "wise")
_PERSON = re.compile(r"^(?:someone|somebody|one who|a person|anyone)\b", re.I)
_NUMBER_WORDS = frozenset({"number", "digit", "integer", "numeral", "letter", "character"})
_ARTICLE = re.compile(r"(?<![\w'-])(a|an|A|An)\s+([^\s]+)")


@dataclass(frozen=True)
class Problem:
    """One problem in an answer: a code from :data:`CODES` and a short message."""

    code: str
    message: str


@dataclass(frozen=True)
class Opening:
    """The opening subject phrase of an answer: ``A`` ``gradient descent`` ``is`` ``...``."""

    article: str  # "", "a", "an" or "the" (lower case)
    subject: str  # as the pair names it (its case tells a name from a common noun)
    verb: str  # is, are, was, were
    rest: str  # the complement, after the verb

    @property
    def head(self) -> str:
        """The head noun: the last word, or the word before "of", "per", "for" ... ("factor
        of proportionality", "bits per second")."""
        words = re.split(r"\s+(?:of|per|for|on|in|with)\s+", self.subject.lower(), maxsplit=1)
        words = words[0].split()
        return words[-1].strip(",") if words else ""

    @property
    def complement_head(self) -> str:
        """The head noun of the complement: "a small Scheme implementation in C" ->
        "implementation"; "a kind of clustering algorithm" -> "algorithm"."""
        text = re.sub(r"^(?:a|an|the|any|one)\s+", "", self.rest.lower())
        text = _KIND_OF.sub("", text)
        text = re.sub(r"^(?:a|an|the)\s+", "", text)
        tokens = re.findall(r"[\w/+-]+|[,;:.()]", text) + [""]
        words: list[str] = []
        for word, after in zip(tokens, tokens[1:], strict=False):
            if word in _STOP or not word[0].isalnum():
                break
            ends = after in _STOP or after in ("a", "an", "the") or not after[:1].isalnum()
            if words and word.endswith(("ed", "ing")) and ends:
                break  # "a ball game played with ...", "a file containing a ..."
            words.append(word)
        return words[-1] if words else ""


def opening(answer: str, subject: str | None = None) -> Opening | None:
    """The opening subject phrase, if the answer starts with "[article] <subject> <be>"."""
    text = CONTEXT_PREFIX.sub("", answer.strip(), count=1)
    pattern = re.escape(subject) if subject else r"[^,;:]{1,60}?"
    m = re.match(OPENING_PATTERN.format(subject=pattern), text, re.I | re.S)
    if not m or (not subject and len(m.group(2).split()) > 6):
        return None
    name = subject or m.group(2)
    if not subject and (m.group(1) or senses(name[:1].lower() + name[1:])):
        name = name[:1].lower() + name[1:]  # "Hound" at the start of a sentence is "hound"
    return Opening((m.group(1) or "").lower(), name, m.group(3).lower(), m.group(4))


def _symbolic(subject: str, rest: str) -> str | None:
    """Codes for subjects that are not words: symbols, affixes, file and domain names."""
    if not re.search(r"[A-Za-z]", subject) or re.fullmatch(r"\(\w{1,2}\)", subject):
        return "article_before_non_noun"
    if subject.startswith("-") or subject.endswith("-"):
        return "article_before_non_noun"
    dotted = re.search(r"\w\.\w", subject) and not _PERSON.match(rest)  # not "net.personality"
    if not subject[0].isalnum() or dotted or re.search(r" \d+$", subject):
        return "article_before_proper_name"
    return None


def _classify(subject: str, op: Opening, answer: str, lex: Lexicon) -> str | None:
    """Why ``subject`` takes no indefinite article, as a code, or None."""
    kind = lex.listed(subject)
    comp = lex.heads.get(op.complement_head)
    if kind:
        if comp == "process" and kind != "name":
            kind = "method"  # "A momentum is a kind of optimisation technique"
        names = {"mass": "mass_noun", "name": "proper_name"}
        return f"article_before_{names.get(kind, kind)}"
    words = subject.lower().split()
    head = op.head
    person = bool(_PERSON.match(op.rest))
    if _NON_NOUN.match(op.rest) and len(words) == 1 and not senses(head):
        return "article_before_non_noun"
    if is_plural(head) and comp != "process":
        return "article_before_plural"
    if len(words) == 1 and not senses(head) and not person:
        suffix = head.endswith(_ADJ_SUFFIXES) and "-" not in head and "holic" not in head
        if (suffix or head in wordnet().other_pos) and not head.endswith(_GERUND_SUFFIX):
            return "article_before_non_noun"
        agentive = head.endswith(("er", "or", "ers"))  # "a linter", "an uninstaller"
        if comp == "name" and head not in lex.count and not agentive:
            return "article_before_proper_name"
    if re.search(r"-endian$", head):
        return "article_before_non_noun"
    if len(words) > 1 and head in lex.method_heads and comp in (None, "process", "field"):
        return "article_before_field" if comp == "field" else "article_before_method"
    if head not in lex.count and comp == "process" and head.endswith(_PROCESS_SUFFIXES):
        if not head.endswith("al") or head.endswith(("ral", "val", "sal")):
            return "article_before_method"
    if comp == "field" and head.endswith(FIELD_SUFFIXES):
        return "article_before_field"
    if comp == "game" and head not in ("game", "sport"):
        return "article_before_mass_noun"
    if head not in lex.count and massy(subject, head, answer):
        return "article_before_method" if comp == "process" else "article_before_mass_noun"
    return None


def _article_problems(op: Opening, answer: str, lex: Lexicon) -> list[Problem]:
    subject = op.subject
    if op.article == "the":
        kind = lex.listed(subject)
        if kind in ("field", "method") and not op.rest.lower().startswith("of "):
            return [Problem(f"article_before_{kind}", f'"The {subject}": {kind} name')]
        return []
    code = _symbolic(subject, op.rest)
    if code is None and subject.isupper() and re.fullmatch(r"[A-Z][A-Z0-9-]+", subject):
        expansion = lex.expansions.get(subject, "")
        if lex.listed(subject) or (expansion and lex.listed(expansion)):
            code = "article_before_acronym"
        else:
            return []
    if code is None and subject[:1].isupper():
        return []  # "A Markov chain", "An Ada program": capitalised subjects are left alone
    code = code or _classify(subject, op, answer, lex)
    if code is None:
        return []
    return [Problem(code, f'"{op.article} {subject}": {CODES[code].split(" (")[0]}')]


_DECLARED_CODES = {"mass": "article_before_mass_noun", "proper": "article_before_proper_name",
                   "plural": "article_before_plural"}  # fmt: skip


def _declared_problems(op: Opening, kind: str) -> list[Problem]:
    """Problems of a subject whose noun kind the glossary declares (it is believed)."""
    if kind == "count" and not op.article and op.verb in ("is", "was") and not _META.match(op.rest):
        return [Problem("missing_article", f'"{op.subject} {op.verb}": declared countable')]
    code = _DECLARED_CODES.get(kind)
    if code and op.article in ("a", "an"):
        return [Problem(code, f'"{op.article} {op.subject}": declared {kind}')]
    return []


def _missing_article(op: Opening, answer: str, lex: Lexicon) -> list[Problem]:
    subject, head = op.subject, op.head
    words = subject.split()
    if op.verb not in ("is", "was") or _META.match(op.rest) or not words:
        return []
    if not re.fullmatch(r"[a-z][a-z-]*", head) or "'" in words[0]:
        return []
    if subject[:1].isupper() and (len(words) == 1 or not words[-1].islower()):
        return []  # a name ("Texas", "Old Irish"); "DIP switch" and "Markov chain" go on
    if is_plural(head) is not False or head in lex.mass or head in lex.fields:
        return []
    comp = op.complement_head
    if lex.heads.get(comp) in ("process", "field") or comp in _NUMBER_WORDS:
        return []  # "Consideration is the process of ...", "Billion is the number ..."
    if not re.match(r"(?:a|an|any|one)\s", op.rest, re.I) and comp and mass_evidence(comp):
        return []  # "Costume is the attire worn in a play": a mass reading
    if not countable(subject.lower(), head, answer, lex):
        return []
    return [Problem("missing_article", f'"{subject} {op.verb}": a countable subject needs a/an')]


def _agreement(op: Opening, lex: Lexicon) -> list[Problem]:
    subject, head = op.subject, op.head
    if lex.listed(subject) or _META.match(op.rest) or " per " in subject:
        return []  # method and field names, words talked about, units ("bits per second")
    if subject[:1].isupper() and not subject.split()[-1].islower():
        return []  # names: "United States is", "Faroese is"
    if op.verb in ("is", "was") and is_plural(head) and head not in lex.mass:
        msg = f'"{subject} {op.verb}": a plural subject takes are/were'
        return [Problem("plural_subject_singular_verb", msg)]
    if op.verb in ("are", "were") and is_plural(head) is False and " and " not in subject:
        if op.article in ("a", "an") or (senses(head) and head not in lex.mass):
            msg = f'"{subject} {op.verb}": a singular subject takes is/was'
            return [Problem("singular_subject_plural_verb", msg)]
    return []


def _indefinite_articles(answer: str, lex: Lexicon) -> list[Problem]:
    out = []
    for m in _ARTICLE.finditer(answer):
        article, word = m.group(1), m.group(2)
        start = m.start()
        if (
            article[0] == "A"
            and start
            and not re.search(r'(?:^|[.!?:]\s+|["(]\s*)$', answer[:start])
        ):
            continue  # "Vitamin A", "type A blood": a capital A inside a sentence
        if word.lower().strip(",.;:") in _FUNCTION_WORDS:
            continue
        want = article_for(word, lex)
        if want and want != article.lower():
            word = word.rstrip(".,;:!?)\"'")
            fixed = f"{want.capitalize() if article[0] == 'A' else want} {word}"
            out.append(Problem("wrong_indefinite_article", f'"{article} {word}" -> "{fixed}"'))
    return out


def check_answer(
    answer: str,
    subject: str | None = None,
    qtype: str | None = None,
    lexicon: Lexicon | None = None,
) -> list[Problem]:
    """The article and agreement problems of one answer (empty when none is found)."""
    lex = lexicon or load_lexicon()
    problems: list[Problem] = []
    op = opening(answer, subject) if qtype is None or qtype in OPENING_QTYPES else None
    declared = lex.declared.get(op.subject.lower()) if op is not None else None
    if op is not None and declared is not None:
        problems += _declared_problems(op, declared)  # the declared kind decides the verb too
    elif op is not None:
        if op.article in ("a", "an", "the"):
            problems += _article_problems(op, answer, lex)
        else:
            problems += _missing_article(op, answer, lex)
        if not problems:  # "A least squares is ...": one problem with the subject is enough
            problems += _agreement(op, lex)
    problems += _indefinite_articles(answer, lex)
    return problems


def acronym_expansions(pairs: Iterable) -> dict[str, str]:
    """``{"CNN": "Convolutional Neural Network"}`` from acronym answers with one expansion."""
    out = {}
    for p in pairs:
        m = re.match(r"^(\S+) stands for (.+?)\.$", p.answer) if p.qtype == "acronym" else None
        if m:
            out[m.group(1)] = m.group(2)
    return out


def release_lexicon(
    pairs: Iterable, lexicon: Lexicon | None = None, declared: dict[str, str] | None = None
) -> Lexicon:
    """The lexicon with the abbreviation expansions of the pairs' acronym answers and the
    noun kinds the release's glossary declares (``declared``, see
    :meth:`~celltext.data.sources.glossary.GlossarySource.declared_nouns`).

    (The subjects that other answers name with a/an were tried as countability evidence
    too, and dropped: v1 puts a/an before many mass nouns, so it added false flags.)"""
    lex = lexicon or load_lexicon()
    return replace(lex, expansions=acronym_expansions(pairs), declared=dict(declared or {}))


def check_pairs(pairs: Iterable, examples: int = 5, lexicon: Lexicon | None = None) -> dict:
    """A report over pairs (objects with ``id, answer, subject, qtype, source``): how many
    were checked and flagged, counts per code and per code and source, and up to
    ``examples`` examples per code (the first by pair id). ``lexicon`` defaults to
    :func:`release_lexicon` of the pairs."""
    pairs = sorted(pairs, key=lambda p: p.id)
    lex = lexicon or release_lexicon(pairs)
    per_code: Counter = Counter()
    per_source: dict[str, Counter] = defaultdict(Counter)
    shown: dict[str, list] = defaultdict(list)
    flagged = 0
    for p in pairs:
        problems = check_answer(p.answer, p.subject, p.qtype, lex)
        flagged += bool(problems)
        for prob in problems:
            per_code[prob.code] += 1
            per_source[prob.code][p.source] += 1
            if len(shown[prob.code]) < examples:
                shown[prob.code].append({"id": p.id, "answer": p.answer, "message": prob.message})
    return {
        "checked": len(pairs),
        "flagged": flagged,
        "problems": sum(per_code.values()),
        "per_code": dict(per_code.most_common()),
        "per_code_source": {c: dict(per_source[c].most_common()) for c in per_code},
        "examples": {c: shown[c] for c in per_code},
    }


# The hand-labelled sample (data/review/grammar_sample_v1.csv): a development draw, then
# a held-out draw made after the rules were written; each is answers drawn with a fixed
# seed plus answers that open with "A/An <subject>" (where most problems are), per source.
SAMPLE_DRAWS = {
    "development": (20260501, 200, {"wordnet": 40, "foldoc": 40, "glossary": 35, "jargon": 5}),
    "held_out": (7, 120, {"wordnet": 15, "foldoc": 15, "glossary": 10}),
}


def review_sample(pairs: Iterable, draw: str = "development", exclude: Iterable = ()) -> list:
    """The pairs of one draw of the hand-labelled sample, from release v1's train pairs
    (the held-out draw excludes the development draw's ids)."""
    seed, n_random, enrich = SAMPLE_DRAWS[draw]
    rng = random.Random(seed)
    skip = set(exclude)
    pairs = sorted((p for p in pairs if p.id not in skip), key=lambda p: p.id)
    chosen = rng.sample(pairs, n_random)
    ids = {p.id for p in chosen}
    for source, n in enrich.items():
        pool = [p for p in pairs if p.source == source and p.id not in ids and _opens_a(p)]
        chosen += rng.sample(pool, n)
    return chosen


def _opens_a(pair) -> bool:
    low, subject = pair.answer.lower(), pair.subject.lower()
    return low.startswith(("a ", "an ")) and low.split(" ", 1)[1].startswith(subject + " ")
