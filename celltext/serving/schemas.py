"""Request and response models of the HTTP API (pydantic; they make the OpenAPI docs).

Static bounds here are hard caps that hold for every deployment; the configured limits
(``max_question_chars``, ``max_batch``) are checked per request by
:mod:`celltext.serving.limits` and give the same 422 error shape.

The answer and model responses are built from the predictor's records
(:class:`~celltext.inference.records.Answer`, :class:`~celltext.inference.records.ModelInfo`)
by :func:`record_model`, so a field added to a record is served without being declared twice;
what the API keeps to itself, adds or bounds is named here.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, field_validator

from celltext.inference.records import Answer, ModelInfo
from celltext.textcheck import check_text

HARD_MAX_CHARS = 100_000
HARD_MAX_ITEMS = 10_000
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Text = Annotated[str, AfterValidator(check_text)]
"""A string that is valid Unicode (no lone surrogates): every request text is one."""


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value.strip()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def record_model(
    name: str,
    record: type,
    doc: str | None = None,
    internal: tuple[str, ...] = (),
    fields: dict[str, Any] | None = None,
) -> type[BaseModel]:
    """The response model ``name``: the fields of the dataclass ``record`` (names, types, defaults,
    in order) less its ``internal`` ones. ``fields`` gives a record field a ``Field`` (bounds,
    description, another default) or adds a field as ``(type, default)``; added fields
    come after the record's. Extra keys are ignored, so ``Model(**record.to_dict())`` works."""
    fields = dict(fields or {})
    hints = typing.get_type_hints(record)
    spec: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name in internal:
            continue
        if f.name in fields:
            spec[f.name] = (hints[f.name], fields.pop(f.name))
        elif f.default_factory is not dataclasses.MISSING:
            spec[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
        else:
            default = ... if f.default is dataclasses.MISSING else f.default
            spec[f.name] = (hints[f.name], default)
    for key, value in fields.items():
        if not isinstance(value, tuple):
            raise TypeError(f"{record.__name__} has no field {key!r} to give a Field")
        spec[key] = value
    return create_model(name, __doc__=doc, **spec)


class AnswerRequest(_Strict):
    """One question."""

    question: Text = Field(
        ..., min_length=1, max_length=HARD_MAX_CHARS, examples=["What is backpropagation?"]
    )
    include_activity: bool = Field(False, description="Also return the lattice activity.")

    check_question = field_validator("question")(_non_blank)


AnswerOut = record_model(
    "AnswerOut",
    Answer,
    "An answer and its provenance.",
    internal=("model_confidence",),  # the quality check's raw score: the metrics' business
    fields={
        "confidence": Field(..., ge=0.0, le=1.0),
        "fallback_reason": Field(None),  # the record always sets it; clients may omit it
        "generated": Field(None, description="The model's own answer, also when replaced."),
        "provenance": Field(
            "generated",
            description="generated, edited (a retrieved answer edited by the decoder), "
            "retrieved, or abstained",
        ),
        "best_guess": Field(None, description="The best candidate, also when abstaining."),
        "source_question": Field(
            None, description="Retrieved and edited answers: the known question they come from."
        ),
        "source_fact": Field(None, description="That known question's answer in the release."),
        "activity": (dict[str, Any] | None, None),
    },
)


class BatchAnswerRequest(_Strict):
    """Several questions, answered as one batch."""

    questions: list[Text] = Field(..., min_length=1, max_length=HARD_MAX_ITEMS)

    @field_validator("questions")
    @classmethod
    def _each_non_blank(cls, value: list[str]) -> list[str]:
        out = []
        for i, q in enumerate(value):
            if not q.strip():
                raise ValueError(f"question {i} is empty")
            out.append(q.strip())
        return out


class BatchAnswerResponse(BaseModel):
    answers: list[AnswerOut]
    latency_ms: float
    model: str


class DecodeRequest(_Strict):
    """Raw teacher-space embeddings, one row per text."""

    embeddings: list[list[FiniteFloat]] = Field(..., min_length=1, max_length=HARD_MAX_ITEMS)


class DecodedOut(BaseModel):
    text: str
    similarity: float | None = Field(None, description="Teacher cosine of the text to its input.")


class DecodeResponse(BaseModel):
    texts: list[DecodedOut]
    dim: int
    model: str
    latency_ms: float


class EmbedRequest(_Strict):
    texts: list[Text] = Field(..., min_length=1, max_length=HARD_MAX_ITEMS)


class EmbedResponse(BaseModel):
    embeddings: list[list[float]]
    dim: int
    teacher: str
    latency_ms: float


class ActivityRequest(_Strict):
    question: Text = Field(..., min_length=1, max_length=HARD_MAX_CHARS)

    check_question = field_validator("question")(_non_blank)


class ActivityResponse(BaseModel):
    available: bool
    shape: list[int] | None = None
    values: list[list[list[float]]] | None = Field(None, description="values[x][y][z] in 0..1.")
    max: float | None = None
    mean: float | None = None
    reason: str | None = None


ModelOut = record_model(
    "ModelOut",
    ModelInfo,
    internal=("metadata",),  # the full checkpoint metadata; ``metrics`` is its public part
    fields={"label": (str, ...), "metrics": (dict[str, Any], Field(default_factory=dict))},
)


class ModelsResponse(BaseModel):
    current: ModelOut
    registry: list[dict[str, Any]] = Field(default_factory=list)
    registry_error: str | None = None


class PromoteRequest(_Strict):
    version: Text = Field(..., min_length=1, max_length=100)
    alias: str = Field("champion", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class RollbackRequest(_Strict):
    alias: str = Field("champion", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class AdminResponse(BaseModel):
    name: str
    alias: str
    version: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class FeedbackRequest(_Strict):
    question: Text = Field(..., min_length=1, max_length=HARD_MAX_CHARS)
    answer: Text = Field(..., max_length=HARD_MAX_CHARS)
    rating: Literal["up", "down"]
    model: Text | None = Field(None, max_length=200)
    fallback: bool | None = None
    confidence: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)
    comment: Text | None = Field(None, max_length=2000)

    check_question = field_validator("question")(_non_blank)


class FeedbackResponse(BaseModel):
    id: int
    counts: dict[str, int]


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "error"]
    model: str | None = None
    uptime_s: float
    fallback: bool
    detail: str | None = None
