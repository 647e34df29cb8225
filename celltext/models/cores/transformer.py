"""``transformer_v1``: a plain pre-norm transformer encoder, the sceptic's attention baseline.

Shape legend: B batch, D teacher width, N tokens (``n_tokens``), P = D / N chunk width,
Dm model width (``d_model``).

::

    x (B, D) -> split into N chunks               (B, N, P)
      -> shared Linear P -> Dm, + learned positions (B, N, Dm)
      -> TransformerBlock x n_layers (non-causal, pre-norm RMSNorm, SwiGLU)
      -> RMSNorm -> mean over the N tokens          (B, Dm)
      -> Linear Dm -> D (small init) + x            (B, D)

The tokens are chunks of the *pooled* teacher embedding, not the teacher's token states:
the core interface receives only the pooled (B, D) vector, so token states are not
available to any core. The blocks are the ones the CCT core uses
(:class:`~celltext.models.blocks.attention.TransformerBlock`), so against ``cct_v1`` and
``hybrid_cct_mamba_v1`` it differs in structure only (no convolutional map, no lattice, no
Mamba). The default config has about the shipped hybrid core's parameter count (~0.52M at
D = 384).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from einops import rearrange

from celltext.config import Config, require
from celltext.models.blocks.attention import TransformerBlock
from celltext.models.blocks.checkpointing import checkpointed
from celltext.models.blocks.norms import RMSNorm
from celltext.models.cores.common import CoreModule, ResidualHead
from celltext.models.zoo import register_model


@dataclass
class TransformerCoreConfig(Config):
    """Transformer encoder over ``n_tokens`` chunks of the pooled embedding."""

    dim: int = 384  # teacher embedding width
    n_tokens: int = 16  # chunks of the embedding (dim must divide by it): 24 dims each at 384
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    mlp_ratio: float = 3.0  # SwiGLU hidden width (rounded as the attention blocks round it)
    dropout: float = 0.0
    skip: bool = True  # add the correction to the input embedding
    out_init_scale: float = 0.1  # initial correction norm (teacher embeddings have norm 1)

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")
        require(self.n_tokens > 0 and self.dim % self.n_tokens == 0, "n_tokens", "must divide dim")
        require(self.n_heads > 0, "n_heads", "must be > 0")
        require(
            self.d_model > 0 and self.d_model % self.n_heads == 0, "d_model",
            "must be > 0 and divide by n_heads",
        )  # fmt: skip
        require(self.n_layers > 0, "n_layers", "must be > 0")
        require(self.mlp_ratio > 0, "mlp_ratio", "must be > 0")
        require(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")


@register_model("transformer_v1", kind="core", config_cls=TransformerCoreConfig)
class TransformerCore(CoreModule):
    """Embedding chunks -> transformer encoder -> mean pool -> embedding."""

    def __init__(self, cfg: TransformerCoreConfig):
        super().__init__(cfg)
        chunk = cfg.dim // cfg.n_tokens
        self.embed = nn.Linear(chunk, cfg.d_model)
        self.pos = nn.Parameter(torch.randn(cfg.n_tokens, cfg.d_model) * 0.02)
        d, heads = cfg.d_model, cfg.n_heads
        self.blocks = nn.ModuleList(
            TransformerBlock(d, heads, cfg.mlp_ratio, causal=False, rope=False, dropout=cfg.dropout)
            for _ in range(cfg.n_layers)
        )
        self.norm = RMSNorm(cfg.d_model)
        self.out = ResidualHead(cfg.d_model, cfg.dim, cfg.skip, cfg.out_init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, dim) -> (B, dim)."""
        self.check_input(x)
        tokens = rearrange(x, "b (n p) -> b n p", n=self.cfg.n_tokens)  # (B, N, P)
        t = self.embed(tokens) + self.pos  # (B, N, Dm)
        for block in self.blocks:
            t = checkpointed(block, t)
        pooled = self.norm(t).mean(dim=1)  # (B, Dm)
        return self.out(pooled, x)
