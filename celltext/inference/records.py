"""The predictor's records: answers with provenance, model identity, errors.

Kept apart from :mod:`celltext.inference.predictor` so that the loading code, the routes and
the CLI can use these records without importing the pipeline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RETRIEVAL = "retrieval"
_REASON_CHARS = 200


class StageError(RuntimeError):
    """A stage of the pipeline raised; ``stage`` names it, ``__cause__`` is the error."""

    def __init__(self, stage: str, cause: BaseException):
        self.stage = stage
        self.cause = cause
        super().__init__(f"{stage} failed: {type(cause).__name__}: {cause}")

    @property
    def reason(self) -> str:
        """Short ``fallback_reason`` text."""
        return f"{self.stage}_error: {type(self.cause).__name__}: {self.cause}"[:_REASON_CHARS]


class DimensionError(ValueError):
    """An embedding has the wrong size for the model; the message says what was expected."""


@dataclass
class ModelInfo:
    """Which model answers: registry name and version, architectures, teacher."""

    name: str
    version: str
    ref: str | None = None
    path: str | None = None
    core: str | None = None
    decoder: str | None = None
    teacher_id: str = ""
    dim: int = 0
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """``name/version``, the ``model`` field of every answer."""
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (without the full metadata)."""
        data = asdict(self)
        data.pop("metadata")
        data["label"] = self.label
        data["metrics"] = self.metadata.get("metrics", {})
        return data


@dataclass
class Answer:
    """One answer with its provenance."""

    question: str
    answer: str
    confidence: float
    fallback: bool
    fallback_reason: str | None
    latency_ms: float
    model: str
    similarity: float | None = None
    coherence: float | None = None
    generated: str | None = None
    """The model's own answer (also when the fallback replaced it)."""
    model_confidence: float | None = None
    """Confidence of the model's own answer (the quality check's score)."""
    provenance: str = "generated"
    """Where the served text comes from: ``generated``, ``edited`` (the decoder editing a
    retrieved answer), ``retrieved`` (a known answer) or ``abstained``."""
    abstained: bool = False
    best_guess: str | None = None
    """The best candidate, also when the system abstained."""
    source_question: str | None = None
    """Retrieved and edited answers: the known (training) question whose fact they come from."""
    source_fact: str | None = None
    """That question's answer in the release: the fact served, or the one the decoder edited."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


@dataclass
class Decoded:
    """Text decoded from one raw embedding and how well it preserves it (teacher cosine)."""

    text: str
    similarity: float | None


def model_info_from_checkpoint(ckpt, ref: str | None) -> ModelInfo:
    """Name and version of a loaded checkpoint, from the registry ref or its metadata."""
    meta = dict(getattr(ckpt, "metadata", {}) or {})
    path = Path(getattr(ckpt, "path", "") or ".")
    name = meta.get("registered_name") or meta.get("name")
    version = meta.get("registered_version") or meta.get("version")
    if ref and ref not in (RETRIEVAL,) and not Path(ref).exists():
        if "@" in ref:
            name = name or ref.split("@", 1)[0]
        elif "/" in ref:
            name, _, version = ref.rpartition("/")
    if not name:
        name = "default" if ref is None else path.name
    if not version:
        version = str(meta.get("config_hash", ""))[:8] or "local"
    system = ckpt.model
    return ModelInfo(
        name=str(name),
        version=str(version),
        ref=ref,
        path=str(path),
        core=getattr(system, "core_name", None),
        decoder=getattr(system, "decoder_name", None),
        teacher_id=str(getattr(system, "teacher_id", "")),
        dim=int(getattr(system, "dim", 0) or 0),
        metadata=meta,
    )
