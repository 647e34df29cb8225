"""Generation strategies on a toy Markov decoder with known probabilities, and on real decoders."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from celltext.models.generation import generate, reorder_tree

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


def test_beam_finds_better_sequence_than_greedy(toy):
    # P(B, EOS) = 0.36 beats P(A, C, EOS) = 0.099 and every other sequence
    assert generate(toy, torch.zeros(2, 2), num_beams=3) == [[B], [B]]
    assert generate(toy, torch.zeros(1, 2), num_beams=1) == [[A, C]]


def test_sampling_filters(toy):
    emb = torch.zeros(64, 2)
    g = torch.Generator().manual_seed(0)
    top1 = generate(toy, emb, do_sample=True, top_k=1, generator=g)
    assert all(seq == [A, C] for seq in top1)
    nucleus = generate(toy, emb, do_sample=True, top_p=0.05, generator=g)
    assert all(seq == [A, C] for seq in nucleus)
    free = generate(toy, emb, do_sample=True, temperature=1.0, generator=g)
    assert {seq[0] for seq in free if seq} <= {A, B} and len({tuple(s) for s in free}) > 2
    # top_k=2 never samples the third most likely first token (EOS -> empty answer)
    top2 = generate(toy, emb, do_sample=True, top_k=2, generator=g)
    assert all(seq and seq[0] in (A, B) for seq in top2)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert generate(toy, emb, do_sample=True, generator=g1) == generate(
        toy, emb, do_sample=True, generator=g2
    )


def test_processors(toy):
    emb = torch.zeros(1, 2)
    # min_new_tokens forbids EOS: A C then D D D ...; no_repeat_ngram_size=1 forbids D twice
    assert generate(toy, emb, max_new_tokens=5, min_new_tokens=5) == [[A, C, D, D, D]]
    out = generate(toy, emb, max_new_tokens=5, min_new_tokens=3, no_repeat_ngram_size=1)
    assert len(set(out[0])) == len(out[0])
    strong = generate(toy, emb, max_new_tokens=5, min_new_tokens=3, repetition_penalty=50.0)
    assert strong[0][:3] == [A, C, D] and strong[0][3:4] != [D]


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
