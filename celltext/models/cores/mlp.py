"""``mlp_v1``: a plain residual MLP, the baseline a sceptic would choose.

Shape legend: B batch, D teacher width, F hidden width.

::

    h = x (B, D); for each block: h = h + W2 GELU(W1 RMSNorm(h))   (W2 small init, so ~identity)
    -> (B, D)

About the size of the default hybrid core at dim 384 (see docs/HYBRID_ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from celltext.config import Config, require
from celltext.models.blocks.checkpointing import checkpointed
from celltext.models.blocks.norms import RMSNorm
from celltext.models.cores.common import CoreModule, init_small_
from celltext.models.zoo import register_model


@dataclass
class MLPCoreConfig(Config):
    """Residual MLP core."""

    dim: int = 384
    hidden: int = 448  # matches the default hybrid core's parameter count at dim 384
    n_blocks: int = 2
    dropout: float = 0.0
    out_init_scale: float = 0.1  # initial correction norm (teacher embeddings have norm 1)

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")
        require(self.hidden > 0, "hidden", "must be > 0")
        require(self.n_blocks > 0, "n_blocks", "must be > 0")
        require(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")


class MLPBlock(nn.Module):
    """Pre-norm residual MLP block."""

    def __init__(self, dim: int, hidden: int, dropout: float, init_scale: float):
        super().__init__()
        self.norm = RMSNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)
        init_small_(self.fc2, init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, D) -> (B, D)."""
        return x + self.dropout(self.fc2(F.gelu(self.fc1(self.norm(x)))))


@register_model("mlp_v1", kind="core", config_cls=MLPCoreConfig)
class MLPCore(CoreModule):
    """x + MLP(x), ``n_blocks`` times."""

    def __init__(self, cfg: MLPCoreConfig):
        super().__init__(cfg)
        self.blocks = nn.ModuleList(
            MLPBlock(cfg.dim, cfg.hidden, cfg.dropout, cfg.out_init_scale)
            for _ in range(cfg.n_blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, dim) -> (B, dim)."""
        self.check_input(x)
        for block in self.blocks:
            x = checkpointed(block, x)
        return x
