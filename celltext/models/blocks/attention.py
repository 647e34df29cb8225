"""Attention building blocks: RoPE, SwiGLU, self-attention with a KV cache, transformer block.

Shape legend: B batch, L sequence length (new tokens this call), T total cached length,
D model width, H heads, Dh = D // H head width, F SwiGLU hidden width.

- :class:`RotaryEmbedding`: rotary position embedding (Su et al. 2021, "RoFormer"),
  rotate-half convention as in GPT-NeoX / Llama.
- :class:`SwiGLU`: gated MLP ``W2(silu(W1 x) * W3 x)`` (Shazeer 2020, "GLU Variants").
- :class:`SelfAttention`: multi-head attention through
  ``torch.nn.functional.scaled_dot_product_attention``. ``forward(x)`` attends over a whole
  sequence; ``step(x, cache) -> (y, cache)`` continues after the positions in an immutable
  :class:`KVCache` and returns it extended, so each new token only computes its own
  projections. Every sequence layer in celltext has this ``step`` form (Mamba's, the causal
  conv's), so generation and the ONNX export drive them the same way.
- :class:`TransformerBlock`: pre-norm (RMSNorm) residual block, attention then SwiGLU.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from celltext.models.blocks.norms import RMSNorm


def swiglu_hidden(dim: int, mlp_ratio: float, multiple_of: int = 8) -> int:
    """Hidden width of a SwiGLU with the parameter count of a ``mlp_ratio`` GELU MLP.

    A SwiGLU has three matrices instead of two, so the width is scaled by 2/3 (Llama).
    """
    hidden = int(2 * mlp_ratio * dim / 3)
    return max(multiple_of, multiple_of * math.ceil(hidden / multiple_of))


class RotaryEmbedding(nn.Module):
    """Rotary position embedding applied to queries and keys.

    The cos/sin table is a non-persistent buffer (not in the state dict), grown on demand,
    so checkpoints do not depend on the maximum length.
    """

    def __init__(self, head_dim: int, base: float = 10000.0, max_seq_len: int = 512):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
        self.head_dim = head_dim
        self.base = base
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        cos, sin = self._table(max_seq_len)
        self.register_buffer("cos_cached", cos, persistent=False)
        self.register_buffer("sin_cached", sin, persistent=False)

    def _table(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.arange(length, dtype=torch.float32, device=self.inv_freq.device)
        freqs = torch.outer(t, self.inv_freq)  # (length, Dh/2)
        emb = torch.cat([freqs, freqs], dim=-1)  # (length, Dh)
        return emb.cos(), emb.sin()

    @staticmethod
    def _rotate_half(x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([-x2, x1], dim=-1)

    def forward(self, x: torch.Tensor, start_pos: int = 0) -> torch.Tensor:
        """Rotate ``x`` (B, H, L, Dh) as if its first position were ``start_pos``.

        Positions past the precomputed table are computed on the fly (the module's buffers
        never change after construction).
        """
        end = start_pos + x.shape[-2]
        if end > self.cos_cached.shape[0]:
            cos, sin = self._table(end)
        else:
            cos, sin = self.cos_cached, self.sin_cached
        cos = cos[start_pos:end].to(x.dtype)  # (L, Dh)
        sin = sin[start_pos:end].to(x.dtype)  # (L, Dh)
        return x * cos + self._rotate_half(x) * sin


class SwiGLU(nn.Module):
    """Gated feed-forward: ``w2(silu(w1 x) * w3 x)``; ``w1`` and ``w3`` are one matmul (``w13``)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.w13 = nn.Linear(dim, 2 * hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., D) -> gate, up: (..., F) each -> (..., D)
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.dropout(self.w2(F.silu(gate) * up))


class KVCache(NamedTuple):
    """Keys and values of the positions seen so far, (B, H, T, Dh) each; T = ``k.shape[2]``.

    Immutable, like :class:`~celltext.models.blocks.mamba.MambaCache`: :meth:`SelfAttention.step`
    returns a new cache that is the old one with the new positions appended. Because its
    length is a tensor shape, the same code traces to ONNX with a growing state.
    """

    k: torch.Tensor
    v: torch.Tensor


class SelfAttention(nn.Module):
    """Multi-head self-attention with optional causal mask, RoPE and KV cache."""

    def __init__(
        self, dim: int, n_heads: int, causal: bool = True, rope: bool = True, dropout: float = 0.0
    ):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim ({dim}) must be divisible by n_heads ({n_heads})")
        self.dim = dim
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.causal = causal
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.resid_dropout = nn.Dropout(dropout)
        self.rope = RotaryEmbedding(self.head_dim) if rope else None

    def allocate_cache(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> KVCache:
        """Empty cache (no positions) for ``batch`` sequences."""
        weight = self.qkv.weight  # a method, not a tensor, once dynamically quantised
        ref = weight if isinstance(weight, torch.Tensor) else torch.empty(0)
        empty = torch.zeros(
            batch, self.n_heads, 0, self.head_dim,
            device=device or ref.device, dtype=dtype or ref.dtype,
        )  # fmt: skip
        return KVCache(empty, empty)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the whole sequence ``x`` (B, L, D) -> (B, L, D)."""
        return self.step(x, None)[0]

    def step(self, x: torch.Tensor, cache: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        """Attend over ``x`` (B, L, D) after the cached positions; (output, new cache).

        ``x[:, 0]`` is at position ``T = cache.k.shape[2]`` (0 without a cache).
        """
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"expected input of shape (B, L, {self.dim}), got {tuple(x.shape)}")
        qkv = self.qkv(x)  # (B, L, 3D)
        q, k, v = rearrange(qkv, "b l (three h d) -> three b h l d", three=3, h=self.n_heads)
        start = 0 if cache is None else cache.k.shape[2]
        if self.rope is not None:
            q = self.rope(q, start)
            k = self.rope(k, start)
        if cache is not None:
            k = torch.cat([cache.k, k], dim=2)  # (B, H, T+L, Dh)
            v = torch.cat([cache.v, v], dim=2)
        length, mask, is_causal = x.shape[1], None, self.causal
        if self.causal and start > 0:
            is_causal = False
            if length > 1:  # query i (absolute start + i) sees keys 0 .. start + i
                rows = torch.arange(length, device=x.device)[:, None] + start
                mask = torch.arange(start + length, device=x.device)[None, :] <= rows  # (L, T)
        drop = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=drop, is_causal=is_causal
        )  # (B, H, L, Dh)
        out = rearrange(out, "b h l d -> b l (h d)")
        return self.resid_dropout(self.proj(out)), KVCache(k, v)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(
        self,
        dim: int,
        n_heads: int,
        mlp_ratio: float = 4.0,
        *,
        causal: bool = True,
        rope: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.norm1 = RMSNorm(dim)
        self.attn = SelfAttention(dim, n_heads, causal=causal, rope=rope, dropout=dropout)
        self.norm2 = RMSNorm(dim)
        self.mlp = SwiGLU(dim, swiglu_hidden(dim, mlp_ratio), dropout=dropout)

    def allocate_cache(self, batch: int, **kwargs) -> KVCache:
        """Empty KV cache for incremental decoding (see :meth:`SelfAttention.allocate_cache`)."""
        return self.attn.allocate_cache(batch, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, L, D) -> (B, L, D)."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    def step(self, x: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        """``x``: (B, L, D) after the cached positions -> (B, L, D), the new cache."""
        h, cache = self.attn.step(self.norm1(x), cache)
        x = x + h
        return x + self.mlp(self.norm2(x)), cache
