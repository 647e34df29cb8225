"""How the predictor answers: one nested config, passed per call.

::

    PredictorConfig
    ├── decoding: DecodingConfig      how texts are written (celltext.inference.decoding)
    │   ├── generation: GenerationOptions   the decoding loop (Hugging Face names)
    │   ├── rerank: RerankConfig            sampled candidates, best by teacher cosine
    │   ├── search: SearchConfig            ``mode="search"``: prototypes, correction
    │   └── correction: CorrectionConfig    ``mode="correct"``: the corrector, steps, beam
    ├── quality: QualityConfig        re-embedding + coherence -> confidence, threshold
    ├── fallback: FallbackPolicy      phrase bank on failure, abstention
    └── bank: BankConfig              which release's phrase bank

A caller that needs other options passes a config to the call (``predictor.answer(qs,
config)``) or takes :meth:`~celltext.inference.predictor.Predictor.with_config`; a shared
predictor is never changed in place (the HTTP service shares one across threads).
Overrides name the nested keys: ``config.replace(fallback={"enabled": False})``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from celltext.config import Config, require
from celltext.generation import GenerationOptions
from celltext.paths import DEFAULT_RELEASE

DecodeMode = Literal["generative", "edit", "search", "correct"]
DECODE_MODES: tuple[str, ...] = get_args(DecodeMode)
"""``generative`` (the decoder alone), ``edit`` (retrieve and edit: the nearest phrase-bank
answer is the prototype), ``search`` (best by teacher cosine of the plain decode, the
nearest phrase-bank texts and their edits) or ``correct`` (search, then a corrector with
feedback rewrites the closest texts, :mod:`celltext.inference.correction`; needs
``correction.weights``)."""


@dataclass
class RerankConfig(Config):
    """Sampled candidates ranked by the teacher's cosine to the target embedding."""

    candidates: int = 0
    """Candidates per answer (the plain decode + ``candidates - 1`` samples); 0/1: off."""
    temperature: float = 0.8
    top_p: float = 0.95

    def validate(self) -> None:
        require(self.candidates >= 0, "candidates", "must be >= 0")
        require(self.temperature > 0, "temperature", "must be > 0")
        require(0.0 < self.top_p <= 1.0, "top_p", "must be in (0, 1]")


@dataclass
class SearchConfig(Config):
    """``mode="search"``: which candidates are compared."""

    prototypes: int = 1
    """How many nearest phrase-bank texts are candidates, each also edited."""
    correction_steps: int = 0
    """Rounds that edit the best text so far toward the embedding again, kept where the
    teacher finds the edit closer (iterative correction, as vec2text)."""

    def validate(self) -> None:
        require(self.prototypes >= 1, "prototypes", "must be >= 1")
        require(self.correction_steps >= 0, "correction_steps", "must be >= 0")


@dataclass
class CorrectionConfig(Config):
    """``mode="correct"``: the corrector's search (:mod:`celltext.inference.correction`)."""

    weights: str = ""
    """Folder of a trained corrector (``corrector.safetensors`` + ``corrector.json``);
    empty: ``$CELLTEXT_CORRECTOR``."""
    steps: int = 3
    """Rounds of correction (each: one corrector decode and one teacher call per kept text)."""
    beam: int = 2
    """Texts kept per answer between rounds (the closest by teacher cosine)."""
    samples: int = 0
    """Sampled corrections per kept text and round, besides the greedy one."""
    prototypes: int = 1
    """Nearest bank answers among the starting candidates (search mode's ``prototypes``)."""
    temperature: float = 0.7
    """Temperature of the sampled corrections (top-p 0.95)."""

    def validate(self) -> None:
        require(self.steps >= 0, "steps", "must be >= 0")
        require(self.beam >= 1, "beam", "must be >= 1")
        require(self.samples >= 0, "samples", "must be >= 0")
        require(self.prototypes >= 1, "prototypes", "must be >= 1")
        require(self.temperature > 0, "temperature", "must be > 0")


def _default_generation() -> GenerationOptions:
    # Never repeat a 4-gram of tokens: the retrieve-and-edit decoder otherwise loops on
    # copied phrases ("rate, and rate, and rate"); 3 also blocks a word's subword tokens
    # reappearing ("Poisson ... Poissoiss").
    return GenerationOptions(max_new_tokens=48, no_repeat_ngram_size=4)


@dataclass
class DecodingConfig(Config):
    """How embeddings become text (:class:`~celltext.inference.decoding.Decoding`)."""

    mode: DecodeMode = "edit"
    """``decode()`` of raw embeddings (see :data:`DECODE_MODES`); answers always edit the
    retrieved prototype when the decoder can."""
    generation: GenerationOptions = field(default_factory=_default_generation)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    correction: CorrectionConfig = field(default_factory=CorrectionConfig)
    seed: int = 0
    """Seed of the sampled candidates: a question always gets the same ones."""
    normalize_core_output: bool = True
    """L2-normalise the core's prediction before decoding (decoders train on unit vectors)."""

    def sampling(self) -> GenerationOptions:
        """The generation options of the reranking draws."""
        r = self.rerank
        return self.generation.replace(
            num_beams=1, do_sample=True, temperature=r.temperature, top_p=r.top_p
        )


@dataclass
class QualityConfig(Config):
    """Confidence of a generated answer (:class:`~celltext.inference.quality.QualityAssessor`)."""

    threshold: float = 0.5
    """Confidence below which the fallback replaces a generated answer (models without a
    fitted selector)."""
    similarity_weight: float = 0.7
    """Weight of the re-embedding similarity in the confidence (the rest is coherence)."""
    use_coherence: bool = True

    def validate(self) -> None:
        require(0.0 <= self.threshold <= 1.0, "threshold", "must be in 0..1")
        require(0.0 <= self.similarity_weight <= 1.0, "similarity_weight", "must be in 0..1")


@dataclass
class FallbackPolicy(Config):
    """What happens when the model's answer is weak or a stage fails."""

    enabled: bool = True
    """Use the phrase bank on low quality or failure (False: raw model output, a failing
    stage raises :class:`~celltext.inference.records.StageError`)."""
    search: Literal["question", "answer"] = "question"
    """Phrase-bank look-up: nearest train question (robust to a failing core) or nearest
    known answer to the core's prediction."""
    abstain: bool = True
    """Say "I don't know" below the selector's abstention threshold (False: always serve
    the best candidate)."""


SERVED_SPLITS = "train+val+test_unseen"
"""The served phrase bank: every fact of a release (``test_paraphrase`` re-asks ``train``
facts in other words, so it adds none)."""


@dataclass
class BankConfig(Config):
    """The phrase bank: splits of a dataset release, embedded by the model's teacher.

    Served answers come from every fact of the release (:data:`SERVED_SPLITS`); evaluation
    and calibration build their own bank of ``train`` alone, so a test split is never
    answered from its own pairs."""

    release: str = DEFAULT_RELEASE
    split: str = SERVED_SPLITS
    """A split, or several joined by ``+``."""
    approximate: bool = True
    """Search a large bank through HNSW graphs (:mod:`celltext.ann`); False: full scans."""
    spelling: bool = True
    """Correct a question's typing errors against the bank's words before the teacher embeds
    it ("gradiant" -> "gradient", :mod:`celltext.spelling`); the answer keeps the question
    as typed."""


@dataclass
class PredictorConfig(Config):
    """How answers are produced and checked (see the module docstring)."""

    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    fallback: FallbackPolicy = field(default_factory=FallbackPolicy)
    bank: BankConfig = field(default_factory=BankConfig)


__all__ = [
    "DECODE_MODES", "SERVED_SPLITS", "BankConfig", "CorrectionConfig", "DecodeMode",
    "DecodingConfig", "FallbackPolicy", "PredictorConfig", "QualityConfig", "RerankConfig",
    "SearchConfig",
]  # fmt: skip
