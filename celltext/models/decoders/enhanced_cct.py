"""``enhanced_cct_v1``: a conv-tokenised transformer decoder (CCT-style), the conservative option.

Compact Convolutional Transformers (Hassani et al. 2021) put a convolutional tokenizer
(conv -> ReLU -> max-pool) in front of a small transformer so that it learns local
structure cheaply. For a decoder the tokenizer has to be *causal* and keep one output per
token, so here it is a stack of residual causal depthwise-conv layers
(RMSNorm -> depthwise conv over the last ``conv_kernel`` positions -> ReLU -> pointwise
linear), without pooling (pooling would merge tokens that must be predicted one by one).
Then pre-norm transformer blocks with RoPE and SwiGLU; prefix conditioning and the tied
head come from :class:`~celltext.models.decoders.base.PrefixDecoder`.

Default: d 192, 1 conv layer (kernel 3), 4 blocks, 6 heads, K = 8: about 2.6M parameters.

Shape legend: B batch, T positions, d model width, k kernel width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from celltext.config import require
from celltext.models.blocks.norms import RMSNorm
from celltext.models.decoders.base import (
    DecoderConfig,
    PrefixDecoder,
    causal_block,
)
from celltext.models.zoo import register_model


class ConvCache(NamedTuple):
    """The last ``k - 1`` (normalised) inputs of a causal conv layer: (B, d, k-1)."""

    buf: torch.Tensor


class CausalConvMixer(nn.Module):
    """Residual causal depthwise conv: ``x + pw(relu(dwconv(norm(x))))``."""

    def __init__(self, dim: int, kernel: int, dropout: float = 0.0):
        super().__init__()
        self.kernel = kernel
        self.norm = RMSNorm(dim)
        self.dwconv = nn.Conv1d(dim, dim, kernel, groups=dim)
        self.pw = nn.Linear(dim, dim, bias=False)
        self.drop = nn.Dropout(dropout)

    def allocate_cache(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> ConvCache:
        """Zeros: the same as the left zero-padding of the full forward."""
        dim, ref = self.dwconv.in_channels, self.dwconv.weight
        shape = (batch, dim, self.kernel - 1)
        return ConvCache(torch.zeros(shape, device=device or ref.device, dtype=dtype or ref.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, d) -> (B, T, d)."""
        return self.step(x, None)[0]

    def step(self, x: torch.Tensor, cache: ConvCache | None) -> tuple[torch.Tensor, ConvCache]:
        """x: (B, T, d) after the cached inputs (zeros without a cache) -> (B, T, d), cache."""
        h = rearrange(self.norm(x), "b t d -> b d t")
        left = F.pad(h[..., :0], (self.kernel - 1, 0)) if cache is None else cache.buf
        h = torch.cat([left, h], dim=-1)  # (B, d, k-1+T): causal left context
        new = ConvCache(h[..., h.shape[-1] - (self.kernel - 1) :])
        h = F.relu(self.dwconv(h))  # (B, d, T)
        return x + self.drop(self.pw(rearrange(h, "b d t -> b t d"))), new


@dataclass
class EnhancedCCTConfig(DecoderConfig):
    """Conv-tokenised transformer decoder."""

    d_model: int = 192
    n_heads: int = 6
    n_layers: int = 4
    n_prefix: int = 8
    mlp_ratio: float = 2.0
    n_conv_layers: int = 1
    conv_kernel: int = 3

    def validate(self) -> None:
        super().validate()
        require(self.n_layers >= 1, "n_layers", "must be >= 1")
        require(self.n_conv_layers >= 0, "n_conv_layers", "must be >= 0")
        require(self.conv_kernel >= 2, "conv_kernel", "must be >= 2")


@register_model("enhanced_cct_v1", kind="decoder", config_cls=EnhancedCCTConfig)
class EnhancedCCTDecoder(PrefixDecoder):
    """Causal conv tokenizer, then transformer blocks."""

    def __init__(self, cfg: EnhancedCCTConfig):
        super().__init__(cfg)
        self.convs = nn.ModuleList(
            CausalConvMixer(cfg.d_model, cfg.conv_kernel, cfg.dropout)
            for _ in range(cfg.n_conv_layers)
        )
        self.blocks = nn.ModuleList(causal_block(cfg) for _ in range(cfg.n_layers))
        self.init_weights()

    def sequence_layers(self) -> list[nn.Module]:
        return [*self.convs, *self.blocks]  # conv layers first, then attention blocks
