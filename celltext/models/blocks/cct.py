"""Compact Convolutional Transformer parts (Hassani et al. 2021, "Escaping the Big Data
Paradigm with Compact Transformers", arXiv:2104.05704).

Shape legend: B batch, C input channels, H W input map size, h w token grid size,
L = h * w tokens, D token width.

- :class:`ConvTokenizer`: ``n_conv_layers`` x (conv, ReLU, max-pool) turning a map
  (B, C, H, W) into a token grid (B, L, D) -- CCT's replacement of ViT's patch embedding.
- :func:`sinusoidal_embedding` / learnable positional embedding (CCT supports both).
- :class:`SeqPool`: attention-weighted average of the tokens (CCT Section 3.2), instead of a
  class token.
- :class:`CCTEncoder`: tokenizer + positional embedding + pre-norm transformer blocks
  (non-causal, from :mod:`celltext.models.blocks.attention`) + final RMSNorm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
from einops import rearrange

from celltext.config import Config, require
from celltext.models.blocks.attention import TransformerBlock
from celltext.models.blocks.checkpointing import checkpointed
from celltext.models.blocks.norms import RMSNorm


def _pool_out(n: int, kernel: int, stride: int, padding: int) -> int:
    return (n + 2 * padding - kernel) // stride + 1


class ConvTokenizer(nn.Module):
    """(conv k×k stride s -> ReLU -> max-pool) × n_layers: (B, C, H, W) -> (B, L, D)."""

    def __init__(
        self,
        in_channels: int,
        dim: int,
        n_layers: int = 1,
        kernel_size: int = 3,
        stride: int = 1,
        pool_kernel: int = 3,
        pool_stride: int = 2,
        hidden_channels: int | None = None,
    ):
        super().__init__()
        hidden = hidden_channels or dim
        chans = [in_channels] + [hidden] * (n_layers - 1) + [dim]
        self.kernel_size, self.stride = kernel_size, stride
        self.pool_kernel, self.pool_stride = pool_kernel, pool_stride
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.Conv2d(c_in, c_out, kernel_size, stride, padding=kernel_size // 2, bias=False),
                nn.ReLU(),
            ]
            if pool_kernel > 1 or pool_stride > 1:
                layers.append(nn.MaxPool2d(pool_kernel, pool_stride, padding=pool_kernel // 2))
        self.layers = nn.Sequential(*layers)
        self.n_layers = n_layers
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Token grid (h, w) produced from an (H, W) map."""
        k, s = self.kernel_size, self.stride
        pk, ps = self.pool_kernel, self.pool_stride
        for _ in range(self.n_layers):
            height, width = (_pool_out(n, k, s, k // 2) for n in (height, width))
            if pk > 1 or ps > 1:
                height, width = (_pool_out(n, pk, ps, pk // 2) for n in (height, width))
        return height, width

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img: (B, C, H, W) -> tokens (B, h*w, D), row-major over the grid."""
        return rearrange(self.layers(img), "b d h w -> b (h w) d")


def sinusoidal_embedding(n_positions: int, dim: int) -> torch.Tensor:
    """Fixed sine/cosine position table (Vaswani et al. 2017) of shape (n_positions, dim)."""
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n_positions, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return table


class SeqPool(nn.Module):
    """Sequence pooling: softmax(x W) weights over the L tokens, then a weighted mean."""

    def __init__(self, dim: int):
        super().__init__()
        self.attention = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, D) -> (B, D)."""
        w = torch.softmax(self.attention(x), dim=1)  # (B, L, 1)
        return (w * x).sum(dim=1)


@dataclass
class CCTConfig(Config):
    """A CCT encoder over a (in_channels, H, W) map."""

    in_channels: int = 1
    image_size: tuple[int, int] = (16, 16)
    dim: int = 128
    n_conv_layers: int = 1
    kernel_size: int = 3
    stride: int = 1
    pool_kernel: int = 3
    pool_stride: int = 2
    n_layers: int = 2
    n_heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    positional: Literal["learnable", "sine", "none"] = "learnable"

    def validate(self) -> None:
        require(self.in_channels > 0, "in_channels", "must be > 0")
        require(all(s > 0 for s in self.image_size), "image_size", "every side must be > 0")
        require(self.dim > 0 and self.dim % self.n_heads == 0, "dim", "must divide by n_heads")
        require(self.n_heads > 0, "n_heads", "must be > 0")
        require(self.n_conv_layers > 0, "n_conv_layers", "must be > 0")
        require(self.kernel_size % 2 == 1, "kernel_size", "must be odd")
        require(self.n_layers >= 0, "n_layers", "must be >= 0")
        require(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")


class CCTEncoder(nn.Module):
    """Map (B, C, H, W) -> tokens (B, L, D) through tokenizer, positions and transformer blocks."""

    def __init__(self, cfg: CCTConfig):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = ConvTokenizer(
            cfg.in_channels,
            cfg.dim,
            cfg.n_conv_layers,
            cfg.kernel_size,
            cfg.stride,
            cfg.pool_kernel,
            cfg.pool_stride,
        )
        self.grid = self.tokenizer.grid(*cfg.image_size)
        n_tokens = self.grid[0] * self.grid[1]
        self.pos: nn.Parameter | None = None
        if cfg.positional == "learnable":
            self.pos = nn.Parameter(torch.zeros(1, n_tokens, cfg.dim))
            nn.init.trunc_normal_(self.pos, std=0.2)  # as in the CCT reference code
        elif cfg.positional == "sine":
            self.register_buffer("sine", sinusoidal_embedding(n_tokens, cfg.dim)[None], False)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                cfg.dim, cfg.n_heads, cfg.mlp_ratio, causal=False, rope=False, dropout=cfg.dropout
            )
            for _ in range(cfg.n_layers)
        )
        self.norm = RMSNorm(cfg.dim)

    @property
    def n_tokens(self) -> int:
        """L = h * w."""
        return self.grid[0] * self.grid[1]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img: (B, C, H, W) -> (B, L, D)."""
        c, (h, w) = self.cfg.in_channels, self.cfg.image_size
        if img.dim() != 4 or tuple(img.shape[1:]) != (c, h, w):
            raise ValueError(
                f"CCT input must have shape (B, {c}, {h}, {w}), got {tuple(img.shape)}"
            )
        x = self.tokenizer(img)  # (B, L, D)
        if self.pos is not None:
            x = x + self.pos
        elif self.cfg.positional == "sine":
            x = x + self.sine.to(x.dtype)
        x = self.dropout(x)
        for block in self.blocks:
            x = checkpointed(block, x)
        return self.norm(x)
