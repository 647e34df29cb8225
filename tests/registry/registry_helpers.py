"""Helpers for the registry tests: a tiny tokenizer and system model."""

from __future__ import annotations

import torch

TEXTS = [
    "Backpropagation computes gradients.",
    "Dropout zeroes random activations.",
    "A tokenizer splits text into tokens.",
    "An epoch is one pass over the data.",
] * 3


def make_tokenizer():
    """A byte-level BPE tokenizer of 300 entries."""
    from celltext.tokenizer import CellTokenizer

    return CellTokenizer.train(TEXTS, vocab_size=300)


def make_model(tokenizer, seed: int = 0, **decoder):
    """A tiny CellTextModel (16-D teacher space, MLP core, 1-layer RET decoder)."""
    from celltext.models.system import CellTextModel, SystemConfig

    torch.manual_seed(seed)
    cfg = SystemConfig(
        core="mlp",
        core_config={"hidden": 32, "n_blocks": 1},
        decoder="ret",
        decoder_config={
            "d_model": 32,
            "n_layers": 1,
            "n_heads": 2,
            "n_prefix": 2,
            "vocab_size": tokenizer.vocab_size,
            **decoder,
        },
        teacher_id="hash-bow-teacher",
        dim=16,
    )
    return CellTextModel(cfg)
