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
