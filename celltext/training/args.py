"""Training options as dataclasses (litgpt ``args.py`` style): one docstring per field.

A :class:`Preset` bundles everything a run needs: data release, teacher, tokenizer,
core and decoder architectures with their configs, and one :class:`TrainArgs` per
stage. Presets live as YAML in ``configs/presets/<name>.yaml`` and are loaded with
:func:`load_preset`; every shipped YAML is tested against these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from celltext.config import Config, require

Stage = Literal["decoder", "core", "finetune", "correct"]
STAGES: tuple[str, ...] = ("decoder", "core", "finetune", "correct")


@dataclass
class TrainArgs(Config):
    """Optimisation settings of one stage."""

    lr: float = 1e-3
    """Peak learning rate (AdamW), reached at the end of the warm-up."""
    min_lr_ratio: float = 0.1
    """The cosine schedule decays to ``lr * min_lr_ratio`` at the last step."""
    warmup_steps: int = 0
    """Linear warm-up length in optimizer steps; 0 means ``warmup_ratio`` of all steps."""
    warmup_ratio: float = 0.05
    """Warm-up as a fraction of the total number of steps (used when ``warmup_steps`` is 0)."""
    epochs: float = 1.0
    """Passes over the stage's training examples (fractions allowed); ignored if max_steps > 0."""
    max_steps: int = 0
    """Optimizer steps to run; 0 derives them from ``epochs``."""
    batch_size: int = 32
    """Examples per micro-batch per process."""
    grad_accum_steps: int = 1
    """Micro-batches per optimizer step (global batch = batch_size * processes * this)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables clipping."""
    weight_decay: float = 0.01
    """AdamW weight decay, applied to matrices only (not to biases, norms or gains)."""
    betas: tuple[float, float] = (0.9, 0.98)
    """AdamW betas."""
    eval_every: int = 0
    """Evaluate every this many optimizer steps; 0 means once per epoch."""
    early_stopping_metric: str = ""
    """Validation metric (namespaced key, e.g. ``val/cosine``) that selects the best weights
    and drives early stopping; empty: the stage's default (decoder and finetune
    ``val/token_acc``, core ``val/cosine``)."""
    early_stopping_mode: Literal["auto", "min", "max"] = "auto"
    """Whether lower (``min``) or higher (``max``) is better; auto: ``min`` for losses and
    perplexities, ``max`` otherwise."""
    early_stopping_patience: int = 0
    """Stop after this many evaluations without improvement; 0 never stops early."""
    restore_best: bool = True
    """At the end of the stage, keep the weights of the best evaluation, not the last step."""
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    """Autocast precision (Accelerate). fp16 needs a GPU; on CPU it falls back to "no"."""
    gradient_checkpointing: bool = False
    """Recompute block activations in the backward pass to save memory."""
    checkpoint_every: int = 0
    """Write a resumable checkpoint every this many optimizer steps; 0: only at stage end."""
    log_every: int = 10
    """Log training metrics every this many optimizer steps."""

    def validate(self) -> None:
        require(self.lr > 0, "lr", "must be > 0")
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]")
        require(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        require(0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)")
        require(self.epochs > 0 or self.max_steps > 0, "epochs", "must be > 0 (or set max_steps)")
        require(self.max_steps >= 0, "max_steps", "must be >= 0")
        require(self.batch_size > 0, "batch_size", "must be > 0")
        require(self.grad_accum_steps > 0, "grad_accum_steps", "must be > 0")
        require(self.grad_clip >= 0, "grad_clip", "must be >= 0")
        require(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        require(all(0 <= b < 1 for b in self.betas), "betas", "each must be in [0, 1)")
        require(self.eval_every >= 0, "eval_every", "must be >= 0")
        require(
            not self.early_stopping_metric or "/" in self.early_stopping_metric,
            "early_stopping_metric",
            "use a namespaced key like val/cosine",
        )
        require(self.early_stopping_patience >= 0, "early_stopping_patience", "must be >= 0")
        require(self.checkpoint_every >= 0, "checkpoint_every", "must be >= 0")
        require(self.log_every > 0, "log_every", "must be > 0")

    def metric_and_mode(self, stage_default: str) -> tuple[str, str]:
        """The selection metric and its direction, defaults resolved."""
        metric = self.early_stopping_metric or stage_default
        mode = self.early_stopping_mode
        if mode == "auto":
            lower_better = metric.endswith("loss") or "perplexity" in metric
            mode = "min" if lower_better else "max"
        return metric, mode


@dataclass
class TextStage(Config):
    """Fields of the two stages that train the decoder (``decoder`` and ``finetune``)."""

    enabled: bool = True
    """Run this stage."""
    noise_std: float = 0.0
    """Std of Gaussian noise added per dimension to the input embedding (then re-normalised),
    so the decoder tolerates the core's errors; 0 disables."""
    label_smoothing: float = 0.0
    """Label smoothing of the next-token cross-entropy."""
    prototypes: bool = False
    """Retrieve and edit: feed each text's nearest neighbour (or itself) as a prototype
    (decoders with a prototype segment, ``ret_edit``); False: plain generation only."""
    proto_self_rate: float = 0.2
    """Share of rows whose prototype is their own text (learn to copy a seen text)."""
    proto_pure_rate: float = 0.3
    """Share of batches with no prototype at all (the plain generative decoder)."""
    train: TrainArgs = field(default_factory=TrainArgs)
    """Optimisation settings."""

    def validate(self) -> None:
        require(self.noise_std >= 0, "noise_std", "must be >= 0")
        require(0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)")
        for name in ("proto_self_rate", "proto_pure_rate"):
            require(0.0 <= getattr(self, name) <= 1.0, name, "must be in 0..1")


@dataclass
class DecoderStage(TextStage):
    """Stage ``decoder``: teacher embedding of a text -> that text (teacher forcing)."""

    noise_std: float = 0.02
    generate_samples: int = 0
    """At each evaluation, greedily decode this many validation answers and report
    ``val/exact_match`` (0 skips it: generation is slow on CPU)."""

    def validate(self) -> None:
        super().validate()
        require(self.generate_samples >= 0, "generate_samples", "must be >= 0")


@dataclass
class CoreStage(Config):
    """Stage ``core``: question embedding -> answer embedding.

    loss = cosine_weight * (1 - cos) + mse_weight * ||pred - target||^2
           + contrastive_weight * InfoNCE(pred, targets in the batch; temperature)
    """

    enabled: bool = True
    """Run this stage."""
    cosine_weight: float = 1.0
    """Weight of the mean (1 - cosine(pred, target)) term."""
    mse_weight: float = 1.0
    """Weight of the mean squared L2 distance (sum over dimensions) between pred and target."""
    contrastive_weight: float = 0.1
    """Weight of the in-batch InfoNCE term (other answers in the batch are negatives)."""
    temperature: float = 0.05
    """InfoNCE softmax temperature."""
    negatives: Literal["batch", "bank"] = "batch"
    """InfoNCE negatives: the other answers of the batch, or every distinct training
    answer (the bank the core's answer is looked up in; hard negatives included)."""
    train: TrainArgs = field(default_factory=TrainArgs)
    """Optimisation settings."""

    def validate(self) -> None:
        for name in ("cosine_weight", "mse_weight", "contrastive_weight"):
            require(getattr(self, name) >= 0, name, "must be >= 0")
        require(self.temperature > 0, "temperature", "must be > 0")
        require(self.negatives in ("batch", "bank"), "negatives", "must be 'batch' or 'bank'")


@dataclass
class FinetuneStage(TextStage):
    """Stage ``finetune``: the decoder on the (frozen) core's predicted answer embeddings
    (``noise_std``: extra noise on the predicted embeddings)."""

    enabled: bool = False
    """Run this stage (after ``decoder`` and ``core``)."""
    include_teacher_pairs: bool = True
    """Also keep the teacher embeddings of the training answers in the mix (no forgetting)."""


@dataclass
class CorrectStage(TextStage):
    """Stage ``correct``: the decoder as a corrector of its own output (vec2text's
    hypothesis -> text training, Morris et al. 2023). Before training, the decoder writes a
    plain greedy hypothesis for every training text; a row then gets that hypothesis as its
    prototype with probability ``hypothesis_rate`` (else its own text or nearest neighbour,
    as in stage ``decoder``), so editing learns to fix the errors it actually makes."""

    enabled: bool = False
    """Run this stage (after the others)."""
    prototypes: bool = True
    hypothesis_rate: float = 0.5
    """Share of rows whose prototype is the decoder's own hypothesis of their text."""
    hypothesis_batch: int = 256
    """Batch size of the hypothesis decoding."""

    def validate(self) -> None:
        super().validate()
        require(self.prototypes, "prototypes", "the correct stage edits prototypes")
        require(0.0 <= self.hypothesis_rate <= 1.0, "hypothesis_rate", "must be in 0..1")
        require(self.hypothesis_batch > 0, "hypothesis_batch", "must be > 0")


@dataclass
class StagesConfig(Config):
    """The stages, run in the order decoder, core, finetune, correct."""

    decoder: DecoderStage = field(default_factory=DecoderStage)
    """Decoder pre-training on teacher embeddings."""
    core: CoreStage = field(default_factory=CoreStage)
    """Core training (question -> answer embedding)."""
    finetune: FinetuneStage = field(default_factory=FinetuneStage)
    """Optional decoder fine-tune on the core's outputs."""
    correct: CorrectStage = field(default_factory=CorrectStage)
    """Optional decoder fine-tune as a corrector of its own hypotheses."""


@dataclass
class DataArgs(Config):
    """Which data a run reads (a release written by ``celltext data build``)."""

    release: str = "v1"
    """Release version under ``data/releases`` (or ``$CELLTEXT_RELEASES``)."""
    max_train_pairs: int = 0
    """Use at most this many training pairs (a seeded subset); 0 uses all."""
    max_val_pairs: int = 0
    """Use at most this many validation pairs (a seeded subset); 0 uses all."""
    decoder_questions: bool = True
    """Train the decoder on the training questions too, not only on answers and extra texts."""
    use_extra_texts: bool = True
    """Add ``Release.extra_texts()`` to the decoder's training texts."""
    max_extra_texts: int = 0
    """Use at most this many extra texts (a seeded subset); 0 uses all."""
    max_tokens: int = 64
    """Truncate tokenised texts to this many tokens (BOS and EOS included)."""

    def validate(self) -> None:
        require(bool(self.release), "release", "must name a release")
        for name in ("max_train_pairs", "max_val_pairs", "max_extra_texts"):
            require(getattr(self, name) >= 0, name, "must be >= 0")
        require(self.max_tokens >= 4, "max_tokens", "must be >= 4")


@dataclass
class ModelSpec(Config):
    """A registered architecture and the config fields that differ from its defaults."""

    name: str = "mlp"
    """Registered name (``family`` or ``family_vN``)."""
    config: dict[str, Any] = field(default_factory=dict)
    """Overrides of the architecture's config dataclass (``dim``/``vocab_size`` are set
    by the trainer from the teacher and the tokenizer)."""


@dataclass
class RegistryArgs(Config):
    """What happens to the final checkpoint."""

    model_name: str = "celltext"
    """Registered model name in the MLflow model registry."""
    register: bool = True
    """Log the run to MLflow and register the final checkpoint as a new model version."""
    experiment: str = "celltext"
    """MLflow experiment name."""
    export_dtype: Literal["float32", "float16"] = "float32"
    """Dtype of the final checkpoint's weights (float16 halves its size)."""
    promote: Literal["none", "challenger", "champion", "auto"] = "auto"
    """Alias for the new version: auto = champion if there is none yet, else challenger."""


@dataclass
class Preset(Config):
    """A complete, named training recipe."""

    name: str = "custom"
    """Preset name (also the default run directory name)."""
    description: str = ""
    """One line on what the preset is for and how long it takes."""
    seed: int = 0
    """Seed of model initialisation, data order, noise and dropout."""
    teacher: str = "minilm"
    """Teacher name for ``celltext.teacher.load_teacher``."""
    vocab_size: int = 4096
    """Target size of the byte-level BPE tokenizer trained on the training texts."""
    data: DataArgs = field(default_factory=DataArgs)
    """Data selection."""
    core: ModelSpec = field(default_factory=lambda: ModelSpec(name="mlp"))
    """Core architecture."""
    decoder: ModelSpec = field(default_factory=lambda: ModelSpec(name="ret"))
    """Decoder architecture."""
    stages: StagesConfig = field(default_factory=StagesConfig)
    """Per-stage settings."""
    registry: RegistryArgs = field(default_factory=RegistryArgs)
    """Registration of the result."""
    threads: int = 2
    """torch intra-op threads (results are bit-identical only for the same value)."""

    def validate(self) -> None:
        require(bool(self.name), "name", "must not be empty")
        require(self.vocab_size >= 260, "vocab_size", "must be >= 260 (bytes + specials)")
        require(self.threads >= 0, "threads", "must be >= 0 (0 = torch default)")

    def enabled_stages(self) -> list[str]:
        """Names of the enabled stages, in run order."""
        return [s for s in STAGES if getattr(self.stages, s).enabled]
