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
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from celltext.config import require
from celltext.models.blocks.norms import RMSNorm
from celltext.models.decoders.base import (
    DecoderConfig,
    DecoderState,
    PrefixDecoder,
    causal_block,
    run_block,
)
from celltext.models.zoo import register_model


class ConvCache:
    """The last ``k - 1`` (normalised) inputs of a causal conv layer: (B, d, k-1)."""

    def __init__(self, buf: torch.Tensor):
        self.buf = buf

    def reorder(self, index: torch.Tensor) -> None:
        self.buf = self.buf.index_select(0, index)


class CausalConvMixer(nn.Module):
    """Residual causal depthwise conv: ``x + pw(relu(dwconv(norm(x))))``."""

    def __init__(self, dim: int, kernel: int, dropout: float = 0.0):
        super().__init__()
        self.kernel = kernel
        self.norm = RMSNorm(dim)
        self.dwconv = nn.Conv1d(dim, dim, kernel, groups=dim)
        self.pw = nn.Linear(dim, dim, bias=False)
        self.drop = nn.Dropout(dropout)

    def allocate_cache(self, batch: int, device: torch.device, dtype: torch.dtype) -> ConvCache:
        """Zeros: the same as the left zero-padding of the full forward."""
        dim = self.dwconv.in_channels
        return ConvCache(torch.zeros(batch, dim, self.kernel - 1, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, cache: ConvCache | None = None) -> torch.Tensor:
        """x: (B, T, d) -> (B, T, d); with ``cache``, continue after the cached inputs."""
        h = rearrange(self.norm(x), "b t d -> b d t")
        if cache is None:
            h = F.pad(h, (self.kernel - 1, 0))  # (B, d, k-1+T) causal left padding
        else:
            h = torch.cat([cache.buf, h], dim=-1)  # (B, d, k-1+T)
            cache.buf = h[..., h.shape[-1] - (self.kernel - 1) :]
        h = F.relu(self.dwconv(h))  # (B, d, T)
        return x + self.drop(self.pw(rearrange(h, "b d t -> b t d")))


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

    def _layers_forward(self, x: torch.Tensor, state: DecoderState | None) -> torch.Tensor:
        # x: (B, T, d); caches: conv layers first, then attention blocks
        for i, conv in enumerate(self.convs):
            x = conv(x, None if state is None else state.caches[i])
        for i, block in enumerate(self.blocks, start=len(self.convs)):
            x = run_block(block, x, state, i)
        return x

    def _new_caches(self, batch: int, max_len: int) -> list[Any]:
        kw = self._cache_kwargs()
        convs = [c.allocate_cache(batch, **kw) for c in self.convs]
        return convs + [b.allocate_cache(batch, max_len, **kw) for b in self.blocks]
