"""The one decoding loop (:mod:`celltext.generation`) on a toy Markov stepper with known
probabilities: greedy, beam search, sampling filters and logit processors."""

from __future__ import annotations

import numpy as np
import pytest

from celltext.generation import GenerationOptions, SpecialTokens, generate

PAD, BOS, EOS, A, B, C, D = range(7)
V = 7
SPECIAL = SpecialTokens(PAD, BOS, EOS)


def _table() -> np.ndarray:
    """Next-token log-probabilities given the previous token (rows) (V, V)."""
    p = np.full((V, V), 1e-4)
    p[BOS, [A, B, EOS]] = [0.5, 0.4, 0.1]
    p[A, [C, D, EOS]] = [0.36, 0.34, 0.3]
    p[B, [EOS, C]] = [0.9, 0.1]
    p[C, [EOS, D]] = [0.55, 0.45]
    p[D, [D, EOS]] = [0.6, 0.4]
    return np.log(p / p.sum(1, keepdims=True)).astype(np.float32)


class MarkovStepper:
    """Logits depend only on the previous token; counts the calls it gets."""

    def __init__(self, batch: int):
        self.table = _table()
        self.last = np.full(batch, BOS)
        self.steps = 0

    def first(self):
        return self.table[self.last]

    def next(self, tokens):
        self.steps += 1
        self.last = np.asarray(tokens)
        return self.table[self.last]

    def reorder(self, index):
        self.last = self.last[np.asarray(index)]


def run(batch=1, rng=None, **options):
    opts = GenerationOptions(**options)
    return generate(MarkovStepper(batch * opts.num_beams), batch, SPECIAL, opts, rng)


def test_greedy_follows_argmax_and_stops_at_eos():
    # BOS -> A (0.5) -> C (0.36) -> EOS (0.55)
    assert run() == [[A, C]]
    assert run(max_new_tokens=1) == [[A]]
    stepper = MarkovStepper(1)
    generate(stepper, 1, SPECIAL, GenerationOptions(max_new_tokens=1))
    assert stepper.steps == 0  # the last token is never fed back


def test_beam_finds_better_sequence_than_greedy():
    # P(B, EOS) = 0.36 beats P(A, C, EOS) = 0.099 and every other sequence
    assert run(batch=2, num_beams=3) == [[B], [B]]
    assert run(num_beams=1) == [[A, C]]


def test_sampling_filters():
    rng = np.random.default_rng(0)
    top1 = run(64, rng, do_sample=True, top_k=1)
    assert all(seq == [A, C] for seq in top1)
    nucleus = run(64, rng, do_sample=True, top_p=0.05)
    assert all(seq == [A, C] for seq in nucleus)
    free = run(64, rng, do_sample=True, temperature=1.0)
    assert {seq[0] for seq in free if seq} <= {A, B} and len({tuple(s) for s in free}) > 2
    # top_k=2 never samples the third most likely first token (EOS -> empty answer)
    top2 = run(64, rng, do_sample=True, top_k=2)
    assert all(seq and seq[0] in (A, B) for seq in top2)
    one = run(64, np.random.default_rng(5), do_sample=True)
    assert one == run(64, np.random.default_rng(5), do_sample=True)


def test_processors():
    # min_new_tokens forbids EOS: A C then D D D ...; no_repeat_ngram_size=1 forbids D twice
    assert run(max_new_tokens=5, min_new_tokens=5) == [[A, C, D, D, D]]
    out = run(max_new_tokens=5, min_new_tokens=3, no_repeat_ngram_size=1)
    assert len(set(out[0])) == len(out[0])
    strong = run(max_new_tokens=5, min_new_tokens=3, repetition_penalty=50.0)
    assert strong[0][:3] == [A, C, D] and strong[0][3:4] != [D]


def test_bad_options():
    with pytest.raises(ValueError, match="beam sampling"):
        GenerationOptions(do_sample=True, num_beams=3)
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationOptions(max_new_tokens=0)
    with pytest.raises(ValueError, match="num_beams"):
        GenerationOptions(num_beams=0)
