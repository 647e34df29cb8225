"""``cct_v1``: a Compact Convolutional Transformer core (no lattice, no Mamba).

Shape legend: B batch, D teacher width, C H W spatial map, Dc token width, L tokens.

::

    x (B, D) -> Linear + reshape (B, C, H, W) -> ConvTokenizer (B, L, Dc)
      -> + positions, TransformerBlock x n_layers, RMSNorm -> SeqPool (B, Dc)
      -> Linear (small init) + x -> (B, D)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from celltext.config import Config, require
from celltext.models.blocks.cct import CCTConfig, CCTEncoder, SeqPool
from celltext.models.cores.common import CoreModule, EmbeddingToMap, ResidualHead
from celltext.models.zoo import register_model


@dataclass
class CCTCoreConfig(Config):
    """CCT-only core: the hybrid without lattice and Mamba (same map and token width)."""

    dim: int = 384  # teacher embedding width
    cct: CCTConfig = field(
        default_factory=lambda: CCTConfig(in_channels=2, image_size=(16, 16), dim=128, n_layers=4)
    )
    skip: bool = True  # add the correction to the input embedding
    out_init_scale: float = 0.1  # initial correction norm (teacher embeddings have norm 1)

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")


@register_model("cct_v1", kind="core", config_cls=CCTCoreConfig)
class CCTCore(CoreModule):
    """Embedding -> map -> CCT encoder -> SeqPool -> embedding."""

    def __init__(self, cfg: CCTCoreConfig):
        super().__init__(cfg)
        self.to_map = EmbeddingToMap(cfg.dim, cfg.cct.in_channels, cfg.cct.image_size)
        self.cct = CCTEncoder(cfg.cct)
        self.pool = SeqPool(cfg.cct.dim)
        self.out = ResidualHead(cfg.cct.dim, cfg.dim, cfg.skip, cfg.out_init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, dim) -> (B, dim)."""
        self.check_input(x)
        tokens = self.cct(self.to_map(x))  # (B, L, Dc), already normalised
        return self.out(self.pool(tokens), x)
