"""``hybrid_cct_mamba_v1``: the seeds' Hybrid CCT+Mamba core over a 3D cell lattice.

Shape legend: B batch, D teacher width, C H W spatial map, Dc CCT token width,
h w CCT token grid, X Y Z lattice, S cell state width, L = X*Y*Z, T lattice steps.

::

    x (B, D)
      -> Linear + reshape                       map      (B, C, H, W)
      -> ConvTokenizer (conv, ReLU, max-pool)   tokens   (B, h*w, Dc)
      -> + positions, TransformerBlock x cct_layers (non-causal)
      -> Linear Dc -> S (+ bilinear resize if (h, w) != (X, Y))
                                                drive    (B, X, Y, S)   on the front face z=0
      -> Lattice3D, T steps, shared cell        states   (B, X, Y, Z, S)
      -> serpentine order, MambaLayer x mamba_layers
                                                sequence (B, L, S)
      -> back face z = Z-1                      tokens   (B, X*Y, S)
      -> Linear S -> Dc, TransformerBlock x head_layers, RMSNorm, SeqPool
                                                pooled   (B, Dc)
      -> Linear Dc -> D (small init) + x        output   (B, D)

The residual from the input embedding lets a fresh core start near the identity map.
``HybridCCTMambaConfig.paper()`` gives the seeds' dimensions (768-D teacher, 28×28 map,
15×15×11 lattice, 4 + 3 + 2 blocks). See docs/HYBRID_ARCHITECTURE.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from celltext.config import Config, require
from celltext.models.blocks.attention import TransformerBlock
from celltext.models.blocks.cct import CCTConfig, CCTEncoder, SeqPool
from celltext.models.blocks.lattice import Lattice3D
from celltext.models.blocks.norms import RMSNorm
from celltext.models.cores.common import (
    CoreModule,
    EmbeddingToMap,
    LatticeMambaFields,
    LatticeMambaStage,
    ResidualHead,
)
from celltext.models.registry import register_model


@dataclass
class HybridCCTMambaConfig(LatticeMambaFields, Config):
    """Default: CPU-sized (8×8×8 lattice, about 0.7M parameters at dim 384)."""

    dim: int = 384  # teacher embedding width
    map_size: tuple[int, int] = (16, 16)
    map_channels: int = 2
    cct_dim: int = 128
    cct_layers: int = 2
    cct_heads: int = 4
    mlp_ratio: float = 2.0
    positional: Literal["learnable", "sine"] = "learnable"
    lattice_size: tuple[int, int, int] = (8, 8, 8)
    lattice_state: int = 32
    lattice_steps: int = 8  # = Z, so the input reaches every slice (one cell per step)
    neighbourhood: int = 6
    boundary: Literal["zero", "periodic"] = "zero"
    cell: Literal["gated_mlp", "gru"] = "gated_mlp"
    cell_hidden_mult: float = 1.0  # gated-MLP cell hidden width / lattice_state (CPU cost)
    mamba_layers: int = 2
    d_state: int = 8
    expand: int = 1  # Mamba inner width = expand * lattice_state (1 keeps the CPU scan cheap)
    bidirectional: bool = False
    head_layers: int = 1
    dropout: float = 0.0
    skip: bool = True
    out_init_scale: float = 0.1  # initial correction norm (teacher embeddings have norm 1)

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")
        require(all(s > 0 for s in self.map_size), "map_size", "every side must be > 0")
        require(self.map_channels > 0, "map_channels", "must be > 0")
        require(self.cct_heads > 0, "cct_heads", "must be > 0")
        require(self.cct_dim % self.cct_heads == 0, "cct_dim", "must be divisible by cct_heads")
        require(self.cct_layers >= 0, "cct_layers", "must be >= 0")
        self.validate_lattice_mamba()
        require(self.head_layers >= 0, "head_layers", "must be >= 0")
        require(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")

    def cct_config(self) -> CCTConfig:
        """The CCT encoder over the (map_channels, *map_size) map."""
        return CCTConfig(
            in_channels=self.map_channels,
            image_size=self.map_size,
            dim=self.cct_dim,
            n_layers=self.cct_layers,
            n_heads=self.cct_heads,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
            positional=self.positional,
        )

    @classmethod
    def paper(cls, **overrides: Any) -> HybridCCTMambaConfig:
        """The seeds' dimensions: 768-D teacher, 28×28 map, 15×15×11 lattice (GPU-sized)."""
        base = dict(
            dim=768,
            map_size=(28, 28),
            map_channels=1,
            cct_layers=4,
            lattice_size=(15, 15, 11),
            lattice_state=48,
            lattice_steps=11,
            cell_hidden_mult=2.0,
            mamba_layers=3,
            d_state=16,
            expand=2,
            head_layers=2,
        )
        return cls(**{**base, **overrides})


def tokens_to_face(
    tokens: torch.Tensor, grid: tuple[int, int], face: tuple[int, int]
) -> torch.Tensor:
    """Token grid (B, h*w, S) -> lattice face (B, X, Y, S), resized bilinearly if needed."""
    h, w = grid
    x = rearrange(tokens, "b (h w) s -> b s h w", h=h, w=w)
    if (h, w) != tuple(face):
        x = F.interpolate(x, size=tuple(face), mode="bilinear", align_corners=False)
    return rearrange(x, "b s x y -> b x y s")


@register_model("hybrid_cct_mamba_v1", kind="core", config_cls=HybridCCTMambaConfig)
class HybridCCTMambaCore(CoreModule):
    """Embedding -> CCT -> lattice -> Mamba -> transformer -> SeqPool -> embedding."""

    def __init__(self, cfg: HybridCCTMambaConfig):
        super().__init__(cfg)
        dc, s = cfg.cct_dim, cfg.lattice_state
        self.to_map = EmbeddingToMap(cfg.dim, cfg.map_channels, cfg.map_size)
        self.cct = CCTEncoder(cfg.cct_config())
        self.to_face = nn.Linear(dc, s)
        self.stage = LatticeMambaStage.from_config(cfg)
        self.from_face = nn.Linear(s, dc)
        self.head_blocks = nn.ModuleList(
            TransformerBlock(dc, cfg.cct_heads, cfg.mlp_ratio, False, False, cfg.dropout)
            for _ in range(cfg.head_layers)
        )
        self.head_norm = RMSNorm(dc)
        self.pool = SeqPool(dc)
        self.out = ResidualHead(dc, cfg.dim, cfg.skip, cfg.out_init_scale)

    def forward(
        self, x: torch.Tensor, return_activity: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x: (B, dim) -> (B, dim); with ``return_activity`` also (B, T, X, Y, Z) cell norms."""
        self.check_input(x)
        tokens = self.cct(self.to_map(x))  # (B, h*w, Dc)
        drive = tokens_to_face(self.to_face(tokens), self.cct.grid, self.cfg.lattice_size[:2])
        states, activity = self.stage(drive, return_activity)  # (B, X, Y, Z, S)
        face = rearrange(Lattice3D.back_face(states), "b x y s -> b (x y) s")
        t = self.from_face(face)  # (B, X*Y, Dc)
        for block in self.head_blocks:
            t = block(t)
        out = self.out(self.pool(self.head_norm(t)), x)  # (B, D)
        return (out, activity) if return_activity else out
