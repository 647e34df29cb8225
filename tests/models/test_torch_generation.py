"""``decoder.generate`` (the torch stepper over the shared loop) on a toy Markov decoder; the
loop itself is tested in ``tests/test_generation.py``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from celltext.models.stepper import generate, reorder_tree

PAD, BOS, EOS, A, B, C, D = range(7)
V = 7


def _table() -> torch.Tensor:
    """Next-token probabilities given the previous token (rows) -> log-probs (V, V)."""
    p = torch.full((V, V), 1e-4)
    p[BOS, [A, B, EOS]] = torch.tensor([0.5, 0.4, 0.1])
    p[A, [C, D, EOS]] = torch.tensor([0.36, 0.34, 0.3])
    p[B, [EOS, C]] = torch.tensor([0.9, 0.1])
    p[C, [EOS, D]] = torch.tensor([0.55, 0.45])
    p[D, [D, EOS]] = torch.tensor([0.6, 0.4])
    return (p / p.sum(1, keepdim=True)).log()


class MarkovDecoder(nn.Module):
    """Logits depend only on the previous token (and, via a bias, on emb[:, 0])."""

    def __init__(self):
        super().__init__()
        self.cfg = SimpleNamespace(dim=2, vocab_size=V, pad_id=PAD, bos_id=BOS, eos_id=EOS)
        self.register_buffer("table", _table())
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, emb, input_ids):
        return self.table[input_ids] + emb[:, None, :1] * 0  # (B, L, V)

    def new_state(self, batch):
        return SimpleNamespace(reorder=lambda index: None)

    def decode(self, input_ids, state, emb=None):
        return self.table[input_ids[:, -1]]  # (B, V)


@pytest.fixture
def toy():
    return MarkovDecoder()


def test_greedy_follows_argmax_and_stops_at_eos(toy):
    # BOS -> A (0.5) -> C (0.36) -> EOS (0.55)
    assert generate(toy, torch.zeros(1, 2), num_beams=1) == [[A, C]]
    assert generate(toy, torch.zeros(1, 2), max_new_tokens=1) == [[A]]


def test_options_reach_the_shared_loop(toy):
    # beam search, processors and seeded sampling arrive in celltext.generation unchanged
    assert generate(toy, torch.zeros(2, 2), num_beams=3) == [[B], [B]]
    assert generate(toy, torch.zeros(1, 2), max_new_tokens=5, min_new_tokens=5) == [[A, C, D, D, D]]
    emb = torch.zeros(16, 2)
    assert generate(toy, emb, do_sample=True, rng=np.random.default_rng(3)) == generate(
        toy, emb, do_sample=True, rng=np.random.default_rng(3)
    )
    assert (
        generate(toy, emb, do_sample=True, top_k=1, rng=np.random.default_rng(0)) == [[A, C]] * 16
    )


def test_bad_arguments(toy):
    with pytest.raises(ValueError, match="beam sampling"):
        generate(toy, torch.zeros(1, 2), do_sample=True, num_beams=3)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        generate(toy, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(toy, torch.zeros(1, 2), max_new_tokens=0)


def test_reorder_tree_handles_nested_caches():
    from celltext.models.blocks.mamba import MambaCache

    cache = {
        "kv": [torch.arange(3), (torch.arange(3) * 10,)],
        "m": MambaCache(torch.arange(3), torch.arange(3) + 1),
    }
    out = reorder_tree(cache, torch.tensor([2, 0]))
    assert out["kv"][0].tolist() == [2, 0] and out["kv"][1][0].tolist() == [20, 0]
    assert isinstance(out["m"], MambaCache) and out["m"].ssm.tolist() == [3, 1]
