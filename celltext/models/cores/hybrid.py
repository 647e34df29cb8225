"""``hybrid_cct_mamba_v1``: the seeds' Hybrid CCT+Mamba core over a 3D cell lattice.

Shape legend: B batch, D teacher width, C H W spatial map, Dc CCT token width,
h w CCT token grid, X Y Z lattice, S cell state width, L = X*Y*Z, T lattice steps.

::

    x (B, D)
      -> Linear + reshape                       map      (B, C, H, W)
      -> ConvTokenizer (conv, ReLU, max-pool)   tokens   (B, h*w, Dc)
      -> + positions, TransformerBlock x cct.n_layers (non-causal)
      -> Linear Dc -> S * Zd (+ bilinear resize if (h, w) != (X, Y))
                                                drive    (B, X, Y, Zd, S) on slices z < Zd
                                                (Zd = drive_slices: 1, the front face, in
                                                the seeds' design; Z in the shipped model)
      -> Lattice3D, T steps, shared cell        states   (B, X, Y, Z, S)
      -> serpentine order, MambaLayer x mamba.n_layers
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

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from celltext.config import Config, deep_merge, require
from celltext.models.blocks.attention import TransformerBlock
from celltext.models.blocks.cct import CCTConfig, CCTEncoder, SeqPool
from celltext.models.blocks.checkpointing import checkpointed
from celltext.models.blocks.lattice import Lattice3D, LatticeConfig
from celltext.models.blocks.norms import RMSNorm
from celltext.models.cores.common import (
    CoreModule,
    EmbeddingToMap,
    LatticeMambaStage,
    MambaStackConfig,
    ResidualHead,
)
from celltext.models.zoo import register_model


@dataclass
class HybridCCTMambaConfig(Config):
    """Default: CPU-sized (8×8×8 lattice, about 0.7M parameters at dim 384).

    The CCT reads a ``(cct.in_channels, *cct.image_size)`` map of the embedding; the head
    blocks after the lattice use the CCT's width, heads, MLP ratio and dropout.
    """

    dim: int = 384  # teacher embedding width
    cct: CCTConfig = field(
        default_factory=lambda: CCTConfig(in_channels=2, image_size=(16, 16), dim=128, n_layers=2)
    )
    lattice: LatticeConfig = field(
        # steps = Z, so the input reaches every slice (one cell per step); the gated-MLP
        # cell's hidden width equals the state width to keep the CPU cost down
        default_factory=lambda: LatticeConfig(
            size=(8, 8, 8), state_dim=32, steps=8, hidden_mult=1.0
        )
    )
    mamba: MambaStackConfig = field(default_factory=MambaStackConfig)
    head_layers: int = 1  # transformer blocks over the back-face tokens
    # lattice slices the CCT tokens are written onto, each through its own projection:
    # 1 = the front face only (the seeds' design; release v1's model), Z = every slice
    # (in v1's model slices z >= 1 stayed constant whatever the question: messages from
    # the front face faded within one slice, and Mamba carried the front face onward)
    drive_slices: int = 1
    skip: bool = True  # add the correction to the input embedding
    out_init_scale: float = 0.1  # initial correction norm (teacher embeddings have norm 1)

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")
        require(self.head_layers >= 0, "head_layers", "must be >= 0")
        require(
            1 <= self.drive_slices <= self.lattice.size[2], "drive_slices", "must be in 1..Z"
        )

    @classmethod
    def paper(cls, **overrides: Any) -> HybridCCTMambaConfig:
        """The seeds' dimensions: 768-D teacher, 28×28 map, 15×15×11 lattice (GPU-sized)."""
        base = dict(
            dim=768,
            cct=dict(in_channels=1, image_size=(28, 28), n_layers=4),
            lattice=dict(size=(15, 15, 11), state_dim=48, steps=11, hidden_mult=2.0),
            mamba=dict(n_layers=3, d_state=16, expand=2),
            head_layers=2,
        )
        return cls.from_dict(deep_merge(base, overrides))


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
        cct, dc, s = cfg.cct, cfg.cct.dim, cfg.lattice.state_dim
        self.to_map = EmbeddingToMap(cfg.dim, cct.in_channels, cct.image_size)
        self.cct = CCTEncoder(cct)
        self.to_face = nn.Linear(dc, s * cfg.drive_slices)
        self.stage = LatticeMambaStage(cfg.lattice, cfg.mamba)
        self.from_face = nn.Linear(s, dc)
        self.head_blocks = nn.ModuleList(
            TransformerBlock(
                dc, cct.n_heads, cct.mlp_ratio, causal=False, rope=False, dropout=cct.dropout
            )
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
        drive = tokens_to_face(self.to_face(tokens), self.cct.grid, self.cfg.lattice.size[:2])
        if self.cfg.drive_slices > 1:  # (B, X, Y, Zd*S) -> one drive per slice
            drive = rearrange(drive, "b x y (z s) -> b x y z s", z=self.cfg.drive_slices)
        states, activity = self.stage(drive, return_activity)  # (B, X, Y, Z, S)
        face = rearrange(Lattice3D.back_face(states), "b x y s -> b (x y) s")
        t = self.from_face(face)  # (B, X*Y, Dc)
        for block in self.head_blocks:
            t = checkpointed(block, t)
        out = self.out(self.pool(self.head_norm(t)), x)  # (B, D)
        return (out, activity) if return_activity else out
