"""``cct_v1``: a Compact Convolutional Transformer core (no lattice, no Mamba).

Shape legend: B batch, D teacher width, C H W spatial map, Dc token width, L tokens.

::

    x (B, D) -> Linear + reshape (B, C, H, W) -> ConvTokenizer (B, L, Dc)
      -> + positions, TransformerBlock x n_layers, RMSNorm -> SeqPool (B, Dc)
      -> Linear (small init) + x -> (B, D)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from celltext.config import Config, require
from celltext.models.blocks.cct import CCTConfig, CCTEncoder, SeqPool
from celltext.models.cores.common import CoreModule, EmbeddingToMap, ResidualHead
from celltext.models.registry import register_model


@dataclass
class CCTCoreConfig(Config):
    """CCT-only core: the hybrid without lattice and Mamba (same map and token width)."""

    dim: int = 384
    map_size: tuple[int, int] = (16, 16)
    map_channels: int = 2
    cct_dim: int = 128
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: float = 2.0
    positional: Literal["learnable", "sine"] = "learnable"
    dropout: float = 0.0
    skip: bool = True
    out_init_scale: float = 0.1  # initial correction norm (teacher embeddings have norm 1)

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")
        require(self.n_heads > 0, "n_heads", "must be > 0")
        require(self.cct_dim % self.n_heads == 0, "cct_dim", "must be divisible by n_heads")
        self.cct_config()

    def cct_config(self) -> CCTConfig:
        """The CCT encoder."""
        return CCTConfig(
            in_channels=self.map_channels,
            image_size=self.map_size,
            dim=self.cct_dim,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
            positional=self.positional,
        )


@register_model("cct_v1", kind="core", config_cls=CCTCoreConfig)
class CCTCore(CoreModule):
    """Embedding -> map -> CCT encoder -> SeqPool -> embedding."""

    def __init__(self, cfg: CCTCoreConfig):
        super().__init__(cfg)
        self.to_map = EmbeddingToMap(cfg.dim, cfg.map_channels, cfg.map_size)
        self.cct = CCTEncoder(cfg.cct_config())
        self.pool = SeqPool(cfg.cct_dim)
        self.out = ResidualHead(cfg.cct_dim, cfg.dim, cfg.skip, cfg.out_init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, dim) -> (B, dim)."""
        self.check_input(x)
        tokens = self.cct(self.to_map(x))  # (B, L, Dc), already normalised
        return self.out(self.pool(tokens), x)
