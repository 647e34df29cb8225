"""CCT parts: tokenizer geometry, positional embeddings, sequence pooling, encoder."""

from __future__ import annotations

import pytest
import torch

from celltext.models.blocks.cct import (
    CCTConfig,
    CCTEncoder,
    ConvTokenizer,
    SeqPool,
    sinusoidal_embedding,
)


@pytest.mark.parametrize("size", [(16, 16), (28, 28), (15, 9)])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_tokenizer_grid_matches_output(size, n_layers):
    tok = ConvTokenizer(2, 8, n_layers=n_layers)
    out = tok(torch.randn(3, 2, *size))
    h, w = tok.grid(*size)
    assert out.shape == (3, h * w, 8)


def test_tokenizer_halves_the_map():
    assert ConvTokenizer(1, 8).grid(16, 16) == (8, 8)
    assert ConvTokenizer(1, 8).grid(28, 28) == (14, 14)


def test_sinusoidal_embedding():
    table = sinusoidal_embedding(10, 6)
    assert table.shape == (10, 6)
    torch.testing.assert_close(table[0, 0::2], torch.zeros(3))
    torch.testing.assert_close(table[0, 1::2], torch.ones(3))
    assert sinusoidal_embedding(4, 5).shape == (4, 5)


def test_seqpool_is_a_weighted_average():
    pool = SeqPool(4)
    same = torch.randn(2, 1, 4).expand(2, 7, 4)
    torch.testing.assert_close(pool(same), same[:, 0])
    x = torch.randn(2, 7, 4)
    w = torch.softmax(pool.attention(x), dim=1)
    torch.testing.assert_close(pool(x), (w * x).sum(1))


@pytest.mark.parametrize("positional", ["learnable", "sine", "none"])
def test_encoder_shapes(positional):
    cfg = CCTConfig(in_channels=2, image_size=(12, 10), dim=16, n_heads=2, positional=positional)
    enc = CCTEncoder(cfg)
    out = enc(torch.randn(3, 2, 12, 10))
    assert out.shape == (3, enc.n_tokens, 16) and enc.grid == (6, 5)
    assert ("pos" in dict(enc.named_parameters())) == (positional == "learnable")
    assert "sine" not in enc.state_dict()  # fixed table is not stored


def test_encoder_blocks_are_non_causal_without_rope():
    cfg = CCTConfig(image_size=(8, 8), dim=16, n_heads=2, positional="learnable")
    enc = CCTEncoder(cfg)
    assert enc.blocks[0].attn.causal is False
    assert enc.blocks[0].attn.rope is None


def test_encoder_rejects_wrong_map():
    enc = CCTEncoder(CCTConfig(image_size=(8, 8), dim=16, n_heads=2))
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        enc(torch.randn(2, 1, 8, 9))
