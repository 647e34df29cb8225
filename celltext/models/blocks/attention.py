"""Attention building blocks: RoPE, SwiGLU, self-attention with a KV cache, transformer block.

Shape legend: B batch, L sequence length (new tokens this call), T total cached length,
D model width, H heads, Dh = D // H head width, F SwiGLU hidden width.

- :class:`RotaryEmbedding`: rotary position embedding (Su et al. 2021, "RoFormer"),
  rotate-half convention as in GPT-NeoX / Llama.
- :class:`SwiGLU`: gated MLP ``W2(silu(W1 x) * W3 x)`` (Shazeer 2020, "GLU Variants").
- :class:`SelfAttention`: multi-head attention through
  ``torch.nn.functional.scaled_dot_product_attention``; for incremental decoding it writes
  keys and values into a preallocated :class:`KVCache` so each new token only computes its
  own projections (O(1) work per token outside the attention read itself).
- :class:`TransformerBlock`: pre-norm (RMSNorm) residual block, attention then SwiGLU.
"""

from __future__ import annotations

import math

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

    def __init__(self, head_dim: int, base: float = 10000.0, max_seq_len: int = 256):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
        self.head_dim = head_dim
        self.base = base
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._build(max_seq_len)

    def _build(self, length: int) -> None:
        t = torch.arange(length, dtype=torch.float32, device=self.inv_freq.device)
        freqs = torch.outer(t, self.inv_freq)  # (length, Dh/2)
        emb = torch.cat([freqs, freqs], dim=-1)  # (length, Dh)
        self.register_buffer("cos_cached", emb.cos(), persistent=False)
        self.register_buffer("sin_cached", emb.sin(), persistent=False)

    @staticmethod
    def _rotate_half(x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([-x2, x1], dim=-1)

    def forward(self, x: torch.Tensor, start_pos: int = 0) -> torch.Tensor:
        """Rotate ``x`` (B, H, L, Dh) as if its first position were ``start_pos``."""
        length = x.shape[-2]
        end = start_pos + length
        if end > self.cos_cached.shape[0]:
            self._build(max(end, 2 * self.cos_cached.shape[0]))
        cos = self.cos_cached[start_pos:end].to(x.dtype)  # (L, Dh)
        sin = self.sin_cached[start_pos:end].to(x.dtype)  # (L, Dh)
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


class KVCache:
    """Preallocated keys and values of one attention layer: (B, H, T_max, Dh) each.

    Positions ``[0, length)`` are filled. :meth:`reorder` selects batch rows (beam search).
    """

    def __init__(self, k: torch.Tensor, v: torch.Tensor):
        self.k = k
        self.v = v
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[2]

    def write(self, k: torch.Tensor, v: torch.Tensor, start_pos: int) -> None:
        """Store new keys/values (B, H, L, Dh) at ``[start_pos, start_pos + L)``."""
        end = start_pos + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache holds {self.capacity} positions; asked to write to {end}")
        self.k[:, :, start_pos:end] = k
        self.v[:, :, start_pos:end] = v
        self.length = end

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows ``index`` (LongTensor of shape (B',)), in that order."""
        self.k = self.k.index_select(0, index)
        self.v = self.v.index_select(0, index)


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
        self,
        batch: int,
        max_len: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> KVCache:
        """Empty cache for ``batch`` sequences of up to ``max_len`` positions."""
        weight = self.qkv.weight  # a method, not a tensor, once dynamically quantised
        ref = weight if isinstance(weight, torch.Tensor) else torch.empty(0)
        shape = (batch, self.n_heads, max_len, self.head_dim)
        kwargs = {"device": device or ref.device, "dtype": dtype or ref.dtype}
        return KVCache(torch.zeros(shape, **kwargs), torch.zeros(shape, **kwargs))

    def forward(
        self, x: torch.Tensor, cache: KVCache | None = None, start_pos: int = 0
    ) -> torch.Tensor:
        """Attend over ``x`` (B, L, D); with ``cache``, also over the cached prefix.

        ``start_pos`` is the position of ``x[:, 0]`` (with a cache it must equal the number
        of positions already cached).
        """
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"expected input of shape (B, L, {self.dim}), got {tuple(x.shape)}")
        qkv = self.qkv(x)  # (B, L, 3D)
        q, k, v = rearrange(qkv, "b l (three h d) -> three b h l d", three=3, h=self.n_heads)
        if self.rope is not None:
            q = self.rope(q, start_pos)
            k = self.rope(k, start_pos)
        length = x.shape[1]
        mask = None
        is_causal = self.causal
        if cache is not None:
            if start_pos != cache.length:
                raise ValueError(f"start_pos {start_pos} != cached length {cache.length}")
            cache.write(k, v, start_pos)
            k = cache.k[:, :, : cache.length]  # (B, H, T, Dh)
            v = cache.v[:, :, : cache.length]
            if self.causal and start_pos > 0:
                is_causal = False
                if length > 1:
                    # query i (absolute start_pos + i) sees keys 0 .. start_pos + i
                    total = cache.length
                    rows = torch.arange(length, device=x.device)[:, None] + start_pos
                    mask = torch.arange(total, device=x.device)[None, :] <= rows  # (L, T)
        drop = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=drop, is_causal=is_causal
        )  # (B, H, L, Dh)
        out = rearrange(out, "b h l d -> b l (h d)")
        return self.resid_dropout(self.proj(out))


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

    def allocate_cache(self, batch: int, max_len: int, **kwargs) -> KVCache:
        """Empty KV cache for incremental decoding (see :meth:`SelfAttention.allocate_cache`)."""
        return self.attn.allocate_cache(batch, max_len, **kwargs)

    def forward(
        self, x: torch.Tensor, cache: KVCache | None = None, start_pos: int = 0
    ) -> torch.Tensor:
        """``x``: (B, L, D) -> (B, L, D)."""
        x = x + self.attn(self.norm1(x), cache=cache, start_pos=start_pos)
        return x + self.mlp(self.norm2(x))
