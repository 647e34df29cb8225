"""What a question asks: the release's question types plus kinds that no release fact answers.

A release answers eleven kinds of question (:data:`~celltext.data.schema.QTYPES`: a
definition, what a thing is a kind of, an acronym's expansion, ...). People ask more:
who invented something, when, why, how many, what causes it, which of two is better, how
to do something. The ranker (:mod:`celltext.inference.ranking`) learns to tell them apart
so that "Who invented the perceptron?" is not answered with the perceptron's definition.

:data:`OPEN_PHRASINGS` are question frames of the open kinds, written by hand for training
(``{x}``: a release subject, ``{y}``: a second subject). They are never evaluation data:
the held-out natural-question set (``data/heldout/natural_v1.jsonl``) was written
separately, by someone who did not see these frames.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from celltext.data.schema import QTYPES

OPEN_INTENTS: tuple[str, ...] = (
    "who_made",
    "when",
    "why",
    "how_many",
    "causes",
    "comparison",
    "how_to",
    "quantity",
    "opinion",
)
"""Question kinds that no release fact answers."""
INTENTS: tuple[str, ...] = (*QTYPES, *OPEN_INTENTS)

OPEN_PHRASINGS: dict[str, tuple[str, ...]] = {
    "who_made": (
        "Who invented {x}?", "who came up with {x}", "Who created {x}?", "who made {x}",
        "Who developed {x}?", "who discovered {x}", "Who first proposed {x}?",
        "who is the inventor of {x}", "Which researcher introduced {x}?", "who wrote {x}",
        "Who is credited with {x}?", "who designed {x}?",
    ),
    "when": (
        "When was {x} invented?", "when did {x} come out", "What year was {x} introduced?",
        "when was {x} first used", "When did {x} become popular?", "how old is {x}",
        "When was {x} discovered?", "in what year did {x} appear", "when was {x} released?",
        "What decade is {x} from?",
    ),
    "why": (
        "Why is {x} so popular?", "why does {x} work", "Why is {x} called that?",
        "why do people hate {x}", "Why does {x} happen?", "why is {x} important nowadays",
        "Why did {x} fail?", "why is {x} so slow", "Why would {x} stop working?",
        "why is {x} hard to learn",
    ),
    "how_many": (
        "How many {x} are there?", "how many kinds of {x} exist", "How many people use {x}?",
        "how many {x} are in the world", "How many parts does {x} have?",
        "how many versions of {x} are there", "What is the number of {x} worldwide?",
        "how many layers does {x} have",
    ),
    "causes": (
        "What causes {x}?", "what leads to {x}", "What is the cause of {x}?",
        "why does {x} occur", "what triggers {x}", "What are the causes of {x}?",
        "what makes {x} happen", "What can cause {x}?",
    ),
    "comparison": (
        "What is the difference between {x} and {y}?", "{x} vs {y}",
        "Is {x} better than {y}?", "{x} or {y}, which one should I use",
        "How does {x} compare to {y}?", "difference between {x} and {y}?",
        "Which is faster, {x} or {y}?", "is {x} the same as {y}", "compare {x} and {y}",
        "{x} versus {y} - which is better?",
    ),
    "how_to": (
        "How do I install {x}?", "how to use {x}", "How can I learn {x}?",
        "how do you make {x}", "How do I fix {x}?", "how to get started with {x}",
        "How do I set up {x}?", "steps to build {x}", "How can I implement {x} from scratch?",
        "how do i get rid of {x}",
    ),
    "quantity": (
        "What is the melting point of {x}?", "how much does {x} cost", "What is the price of {x}?",
        "how big is {x}", "What is the boiling point of {x}?", "how heavy is {x}",
        "How long does {x} take?", "how fast is {x}", "What is the population of {x}?",
        "how far away is {x}",
    ),
    "opinion": (
        "Is {x} worth learning?", "do you like {x}", "What do you think of {x}?",
        "is {x} good", "Should I use {x}?", "is {x} overrated", "What is the best {x}?",
        "is {x} dead", "Would you recommend {x}?", "is {x} a good idea",
    ),
}  # fmt: skip


# More ways to ask for the release's own kinds of fact than its templates have, written by
# hand for the ranker's training only ({x}: the subject as named): a question's wording in
# the wild is wider than any template set, and an intent head that has seen one family per
# kind reads a new wording as another kind ("What's the full form of AI?" as kind_of).
RELEASE_PHRASINGS: dict[str, tuple[str, ...]] = {
    "definition": (
        "tell me about {x}", "What's {x} all about?", "i want to understand {x}",
        "Describe {x}.", "{x} definition", "could you define {x} for me", "{x}??",
        "what exactly do people mean by {x}", "What is the concept of {x}?",
        "need a quick explanation of {x}",
    ),
    "acronym": (
        "What's the full form of {x}?", "{x} full form", "what is {x} an abbreviation of",
        "{x} abbreviation meaning", "What does the acronym {x} mean?", "expand {x} pls",
        "{x} stands for what", "long form of {x}", "what do the initials {x} mean",
    ),
    "kind_of": (
        "what type of thing is {x}", "{x} belongs to which category?",
        "What family does {x} belong to?", "classify {x}", "what sort of thing is {x}",
        "{x} is what kind of thing", "Which broader group is {x} in?",
    ),
    "other_name": (
        "{x} is also known as?", "other names for {x}", "{x} synonym",
        "What else do people call {x}?", "alternative name of {x}", "{x} a.k.a.",
        "is there a different word for {x}",
    ),
    "purpose": (
        "what's {x} for", "What is the use of {x}?", "{x} use case",
        "What do you use {x} for?", "what is {x} good for", "Why do people use {x}?",
    ),
    "part_of": (
        "{x} is part of what", "What does {x} belong to?", "which larger thing includes {x}",
        "{x} is a piece of what?", "what is {x} a component of",
    ),
    "function": (
        "what does {x} do in python", "{x} function - what does it do?",
        "How does {x} behave?", "purpose of {x}", "what happens if i call {x}",
        "explain the {x} function",
    ),
    "example": (
        "example of {x}", "Give me an example of {x}.", "{x} example",
        "show an example of {x}", "what would be an example of {x}",
    ),
    "antonym": ("opposite of {x}", "antonym for {x}", "What's the opposite of {x}?"),
}  # fmt: skip


CASUAL_PHRASINGS: dict[str, tuple[str, ...]] = {
    "definition": (
        "whats {x}", "{x} meaning", "what's {x} exactly", "explain {x} simply", "{x} explained",
        "what is meant by {x}", "can u explain {x}", "{x} - what is it", "so what is {x}",
        "eli5 {x}", "meaning of {x} ?", "wat is {x}",
    ),
    "acronym": (
        "{x} = ?", "what's {x} short for", "{x} expansion", "{x} abbrev", "whats {x} stand for",
        "what do the letters {x} stand for",
    ),
    "kind_of": (
        "is {x} a type of something", "{x} falls under what", "what genre of thing is {x}",
        "{x} is a kind of what", "what class of things is {x} in",
    ),
    "other_name": (
        "{x} aka", "another way to say {x}", "{x} also called", "different name for {x} ?",
        "what's {x} otherwise called",
    ),
    "purpose": (
        "{x} used for?", "why would i use {x}", "point of {x}", "whats the point of {x}",
        "what is {x} meant for",
    ),
    "part_of": ("{x} belongs in what", "where does {x} fit, part of what", "{x} part of?"),
    "function": (
        "{x} does what", "what is {x} doing", "what's {x} do", "behaviour of {x} ?",
    ),
    "example": ("{x} e.g.?", "an instance of {x}", "name one {x}", "{x} for example"),
    "antonym": ("{x} opposite", "reverse of {x}", "the opposite word of {x}"),
    "field": ("{x} is from what field", "which area of study is {x}", "{x} - what subject"),
}  # fmt: skip
"""Casual frames of the release's question types, written for calibration only (the ranker
never trains on them, so the selector meets them as it meets a user's own wording): the
selector's confidence is fitted on questions asked the way people type, not only in the
release's templates. ``property`` facts (a symbol, an atomic weight) name the property
asked, so no casual frame asks for them."""


def casual_question(qtype: str, subject: str, rng: random.Random) -> str | None:
    """``subject`` asked for a fact of ``qtype`` in one of :data:`CASUAL_PHRASINGS`, as typed:
    lowercase half of the time."""
    frames = CASUAL_PHRASINGS.get(qtype)
    if not frames:
        return None
    name = re.sub(r"\s*\([^)]*\)$", "", subject)
    question = rng.choice(frames).format(x=name)
    return question.lower() if rng.random() < 0.5 else question


def release_question(qtype: str, subject: str, rng: random.Random) -> str | None:
    """``subject`` asked for a fact of ``qtype`` in one of :data:`RELEASE_PHRASINGS`."""
    frames = RELEASE_PHRASINGS.get(qtype)
    name = re.sub(r"\s*\([^)]*\)$", "", subject)  # "Brazil (country)" is asked as "Brazil"
    return rng.choice(frames).format(x=name) if frames else None


def open_questions(subjects: Sequence[str], per_frame: int, seed: int = 0) -> list[tuple[str, str]]:
    """``(question, intent)`` pairs: every frame of :data:`OPEN_PHRASINGS` filled with
    ``per_frame`` subjects drawn with ``seed`` (a second subject for ``{y}``)."""
    rng = random.Random(seed)
    subjects = sorted({re.sub(r"\s*\([^)]*\)$", "", s) for s in subjects})  # "Brazil (country)"
    out = []
    for intent, frames in OPEN_PHRASINGS.items():
        for frame in frames:
            for _ in range(per_frame):
                x, y = rng.sample(subjects, 2)
                out.append((frame.format(x=x, y=y), intent))
    return out
