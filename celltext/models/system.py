"""The whole trainable system: a core (embedding -> embedding) and a decoder (embedding -> text).

Shapes: B batch, D teacher embedding dim, L tokens, V vocabulary.

``CellTextModel`` is a pure ``nn.Module`` built from a :class:`SystemConfig`; its state
dict has exactly two prefixes, ``core.*`` and ``decoder.*``, which is what
``model.safetensors`` in a checkpoint holds (see :mod:`celltext.registry.checkpoint`).
The teacher (a frozen sentence encoder) is not part of it: the system consumes
teacher embeddings and is told the teacher's id and dimension so that a checkpoint
can refuse to run against the wrong teacher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

import celltext.models.cores  # noqa: F401  (registers the cores)
import celltext.models.decoders  # noqa: F401  (registers the decoders)
from celltext.config import Config, require
from celltext.models.zoo import count_parameters, create_model, resolve

SYSTEM_ARCHITECTURE = "celltext_system_v1"


@dataclass
class SystemConfig(Config):
    """Everything needed to rebuild a :class:`CellTextModel` (weights aside)."""

    core: str = "mlp"
    """Registered core architecture (versioned or family name)."""
    core_config: dict[str, Any] = field(default_factory=dict)
    """Fields of the core's config dataclass that differ from its defaults."""
    decoder: str = "ret"
    """Registered decoder architecture (versioned or family name)."""
    decoder_config: dict[str, Any] = field(default_factory=dict)
    """Fields of the decoder's config dataclass that differ from its defaults."""
    teacher_id: str = "all-MiniLM-L6-v2"
    """Id of the teacher whose embedding space the system works in."""
    dim: int = 384
    """Teacher embedding dimension; forced into both sub-configs' ``dim``."""

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")
        require(bool(self.core), "core", "must name a registered core")
        require(bool(self.decoder), "decoder", "must name a registered decoder")
        for name in ("core_config", "decoder_config"):
            sub_dim = getattr(self, name).get("dim", self.dim)
            require(sub_dim == self.dim, f"{name}.dim", f"must equal dim={self.dim}")


class CellTextModel(nn.Module):
    """Core + decoder, both in the teacher's embedding space."""

    def __init__(self, config: SystemConfig):
        super().__init__()
        self.config = config
        core_entry = resolve(config.core, "core")
        decoder_entry = resolve(config.decoder, "decoder")
        self.core = create_model(core_entry.name, "core", {**config.core_config, "dim": config.dim})
        self.decoder = create_model(
            decoder_entry.name, "decoder", {**config.decoder_config, "dim": config.dim}
        )
        self.core_name = core_entry.name
        self.decoder_name = decoder_entry.name
        self.teacher_id = config.teacher_id
        self.dim = config.dim

    def forward(self, question_emb: torch.Tensor) -> torch.Tensor:
        """Predicted answer embedding: (B, D) -> (B, D)."""
        return self.core(question_emb)

    @torch.no_grad()
    def generate(self, question_emb: torch.Tensor, **kwargs: Any) -> list[list[int]]:
        """Question embeddings (B, D) -> answer token ids (core, then the decoder)."""
        return self.decoder.generate(self.core(question_emb), **kwargs)

    def resolved_config(self) -> SystemConfig:
        """The config with versioned architecture names and the sub-configs' full fields."""
        return self.config.replace(
            core=self.core_name,
            decoder=self.decoder_name,
            core_config=_full_config(self.core, self.config.core_config),
            decoder_config=_full_config(self.decoder, self.config.decoder_config),
        )

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters of the core, the decoder and both (tied tensors once)."""
        return {
            "core": count_parameters(self.core),
            "decoder": count_parameters(self.decoder),
            "total": count_parameters(self),
        }


def _full_config(module: nn.Module, given: dict[str, Any]) -> dict[str, Any]:
    """The module's complete config (``module.cfg``, as every registered model has) as a dict."""
    cfg = getattr(module, "cfg", None)
    return cfg.to_dict() if isinstance(cfg, Config) else dict(given)
