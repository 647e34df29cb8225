"""The data schema shared by every part of celltext: domains, splits, question types, pairs.

A :class:`QAPair` is one released question-answer pair (the JSONL record of DESIGN.md).
A :class:`Fact` is what a source yields before templating: a subject, a question type, the
slots a question template needs, and the finished answer sentence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DOMAINS: tuple[str, ...] = (
    "ai_ml_fundamentals",
    "deep_learning",
    "nlp_llm",
    "computer_vision",
    "reinforcement_learning",
    "mlops_engineering",
    "math_statistics",
    "programming_algorithms",
    "general_knowledge",
)

SPLITS: tuple[str, ...] = ("train", "val", "test_paraphrase", "test_unseen")

# Question types; every one has several question templates in ``celltext.data.templates``.
QTYPES: tuple[str, ...] = (
    "definition",
    "kind_of",
    "other_name",
    "acronym",
    "function",
    "part_of",
    "example",
    "antonym",
    "field",
    "purpose",
    "property",
)


@dataclass(frozen=True)
class QAPair:
    """One released question-answer pair."""

    id: str
    question: str
    answer: str
    domain: str
    subject: str
    qtype: str
    template_id: str
    source: str
    split: str

    def to_dict(self) -> dict[str, str]:
        """The JSONL record (field order as in DESIGN.md)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QAPair:
        """Build from a JSONL record; a missing or unknown field raises ``ValueError``."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in data]
        unknown = [k for k in data if k not in names]
        if missing or unknown:
            raise ValueError(f"bad QAPair record: missing={missing} unknown={unknown}")
        return cls(**{n: str(data[n]) for n in names})


@dataclass
class Fact:
    """A source's statement about a subject, ready to be asked about with a template.

    ``aspect`` tells apart several facts of one type about one subject (the element's
    "symbol" and "atomic number"); ``slots`` fill the question template (``{x}`` is always
    the subject as asked about);
    ``answer`` is the finished one- or two-sentence answer; ``core`` is the informative
    part of the answer without the subject's name (used for coherence and duplicates).
    """

    subject: str
    qtype: str
    answer: str
    domain: str
    source: str
    style: str = "noun"
    aspect: str = ""
    slots: dict[str, str] = field(default_factory=dict)
    core: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.qtype not in QTYPES:
            raise ValueError(f"unknown qtype {self.qtype!r}")
        if self.domain not in DOMAINS:
            raise ValueError(f"unknown domain {self.domain!r}")
        self.slots.setdefault("x", self.subject)
        if not self.core:
            self.core = self.answer
