"""Attention blocks: KV-cached incremental attention equals full attention; RoPE; norms."""

from __future__ import annotations

import pytest
import torch

from celltext.models.blocks.attention import (
    RotaryEmbedding,
    SelfAttention,
    SwiGLU,
    TransformerBlock,
    swiglu_hidden,
)
from celltext.models.blocks.norms import RMSNorm
from celltext.models.stepper import reorder_tree


def test_rmsnorm_unit_rms():
    x = torch.randn(3, 5, 16) * 7
    y = RMSNorm(16)(x)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(3, 5), atol=1e-4, rtol=1e-4)


def test_rope_preserves_norm_and_is_relative():
    rope = RotaryEmbedding(8, max_seq_len=4)  # grows past 4 on demand
    q = torch.randn(1, 1, 1, 8)
    k = torch.randn(1, 1, 1, 8)
    torch.testing.assert_close(rope(q, 5).norm(), q.norm())
    # <R_m q, R_n k> depends only on m - n
    a = (rope(q, 3) * rope(k, 1)).sum()
    b = (rope(q, 12) * rope(k, 10)).sum()
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_swiglu_shape_and_hidden():
    assert swiglu_hidden(96, 4.0) % 8 == 0
    assert SwiGLU(16, 40)(torch.randn(2, 3, 16)).shape == (2, 3, 16)


@pytest.mark.parametrize("rope", [True, False])
def test_incremental_attention_matches_full(rope):
    attn = SelfAttention(32, 4, causal=True, rope=rope).eval()
    x = torch.randn(2, 9, 32)
    full = attn(x)
    cache = attn.allocate_cache(2)
    # a 4-token prefill, then a 2-token chunk (masked prefill with offset), then single tokens
    parts = []
    for lo, hi in [(0, 4), (4, 6), (6, 7), (7, 8), (8, 9)]:
        y, new = attn.step(x[:, lo:hi], cache)
        assert cache.k.shape[2] == lo and new.k.shape[2] == hi  # the given cache is unchanged
        parts.append(y)
        cache = new
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5)


def test_incremental_block_matches_full_and_reorder():
    block = TransformerBlock(32, 4, mlp_ratio=2.0, causal=True, rope=True).eval()
    x = torch.randn(3, 7, 32)
    full = block(x)
    cache = block.allocate_cache(3)
    steps = []
    for i in range(7):
        y, cache = block.step(x[:, i : i + 1], cache)
        steps.append(y)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    # reordering the cache's rows keeps the selected rows' history
    _, cache2 = block.step(x, block.allocate_cache(3))
    cache2 = reorder_tree(cache2, torch.tensor([2, 2, 0]))
    y = torch.randn(1, 1, 32).expand(3, 1, 32)
    out, _ = block.step(y, cache2)
    ref = block(torch.cat([x[[2, 2, 0]], y], 1))[:, -1:]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_bidirectional_attention_sees_future():
    attn = SelfAttention(16, 2, causal=False, rope=False).eval()
    x = torch.randn(1, 5, 16)
    y1 = attn(x)
    x2 = x.clone()
    x2[:, -1] += 1.0
    assert not torch.allclose(attn(x2)[:, 0], y1[:, 0])


def test_causal_attention_ignores_future():
    attn = SelfAttention(16, 2, causal=True).eval()
    x = torch.randn(1, 5, 16)
    x2 = x.clone()
    x2[:, -1] += 1.0
    torch.testing.assert_close(attn(x2)[:, :-1], attn(x)[:, :-1])


def test_bad_shapes_raise():
    attn = SelfAttention(16, 2)
    with pytest.raises(ValueError, match=r"\(B, L, 16\)"):
        attn(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="divisible"):
        SelfAttention(10, 3)
    with pytest.raises(ValueError, match=r"\(B, L, 16\)"):
        attn.step(torch.randn(1, 3, 8), attn.allocate_cache(1))


def test_rope_positions_past_the_table_leave_the_buffers_alone():
    attn = SelfAttention(16, 2, causal=True, rope=True).eval()
    buffers = {k: v.clone() for k, v in attn.named_buffers()}
    x = torch.randn(1, 600, 16)  # longer than the 512-position table
    full = attn(x)
    assert {k: v.shape for k, v in attn.named_buffers()} == {k: v.shape for k, v in buffers.items()}
    _, cache = attn.step(x[:, :599], attn.allocate_cache(1))
    last, _ = attn.step(x[:, 599:], cache)
    torch.testing.assert_close(last, full[:, 599:], atol=1e-5, rtol=1e-5)
