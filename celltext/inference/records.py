"""The predictor's records: its config, answers with provenance, model identity, errors.

Kept apart from :mod:`celltext.inference.predictor` so that the loading code, the routes and
the CLI can use these records without importing the pipeline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from celltext.config import Config, require

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


@dataclass
class PredictorConfig(Config):
    """How answers are produced and checked."""

    threshold: float = 0.5
    """Confidence below which the fallback replaces the generated answer."""
    fallback: bool = True
    """Use the phrase bank on low quality or failure (False: raw model output, errors raise)."""
    max_new_tokens: int = 48
    num_beams: int = 1
    """Beam search with this many beams when > 1 (Hugging Face ``GenerationConfig`` names)."""
    do_sample: bool = False
    """Sample instead of greedy/beam search (``num_beams`` must then be 1)."""
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 4
    """Never repeat a 4-gram of tokens (the retrieve-and-edit decoder otherwise loops on
    copied phrases, "rate, and rate, and rate"; 3 also blocks a word's subword tokens
    reappearing, "Poisson ... Poissoiss"); 0 disables."""
    rerank: int = 0
    """Candidates per answer (the plain decode + samples), best by teacher cosine; 0/1: off."""
    rerank_temperature: float = 0.8
    rerank_top_p: float = 0.95
    seed: int = 0
    similarity_weight: float = 0.7
    """Weight of the re-embedding similarity in the confidence (the rest is coherence)."""
    use_coherence: bool = True
    fallback_search: Literal["question", "answer"] = "question"
    """Phrase-bank look-up: nearest train question (robust to a failing core) or nearest
    known answer to the core's prediction."""
    normalize_core_output: bool = True
    """L2-normalise the core's prediction before decoding (decoders train on unit vectors)."""
    release: str = "v1"
    bank_split: str = "train"
    abstain: bool = True
    """Say "I don't know" when the chosen answer's confidence is below the selector's
    abstention threshold (False: always serve the best candidate)."""
    decode_mode: Literal["generative", "edit", "search"] = "edit"
    """``decode()`` of raw embeddings: the plain decoder, retrieve-and-edit (the nearest
    phrase-bank text as prototype), or search (plain, edited and retrieved candidates plus
    ``rerank - 1`` samples, best by teacher cosine)."""
    search_prototypes: int = 1
    """``search``: how many nearest phrase-bank texts are candidates, each also edited."""
    correction_steps: int = 0
    """``search``: rounds that edit the best text so far toward the embedding again, kept
    where the teacher finds the edit closer (iterative correction, as vec2text)."""

    def validate(self) -> None:
        require(0.0 <= self.threshold <= 1.0, "threshold", "must be in 0..1")
        require(self.max_new_tokens > 0, "max_new_tokens", "must be > 0")
        require(self.search_prototypes >= 1, "search_prototypes", "must be >= 1")
        require(self.correction_steps >= 0, "correction_steps", "must be >= 0")
        require(self.num_beams > 0, "num_beams", "must be > 0")
        require(not (self.do_sample and self.num_beams > 1), "do_sample", "needs num_beams=1")
        require(self.repetition_penalty > 0, "repetition_penalty", "must be > 0")
        require(self.no_repeat_ngram_size >= 0, "no_repeat_ngram_size", "must be >= 0")
        require(self.rerank >= 0, "rerank", "must be >= 0")
        require(self.rerank_temperature > 0, "rerank_temperature", "must be > 0")
        require(0.0 < self.rerank_top_p <= 1.0, "rerank_top_p", "must be in (0, 1]")
        require(0.0 <= self.similarity_weight <= 1.0, "similarity_weight", "must be in 0..1")
