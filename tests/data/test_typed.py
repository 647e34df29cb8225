"""Typing noise (celltext.data.typed): same seed, same rewrite; meaning-bearing tokens kept."""

import random

from celltext.data.typed import as_typed, typo


def test_same_seed_same_rewrite_and_some_noise():
    questions = ["What is gradient descent?", "What does LSTM stand for?"] * 50
    a = [as_typed(q, random.Random(i)) for i, q in enumerate(questions)]
    b = [as_typed(q, random.Random(i)) for i, q in enumerate(questions)]
    assert a == b
    assert any(t != q for t, q in zip(a, questions, strict=True))  # something changed
    assert any(not t.endswith("?") for t in a) and any(t.islower() for t in a)


def test_typo_changes_one_inner_letter_and_keeps_the_ends():
    rng = random.Random(0)
    for _ in range(200):
        word = typo("gradient", rng)
        assert word[0] == "g" and word[-1] == "t"
        assert abs(len(word) - len("gradient")) <= 1


def test_acronyms_and_code_names_get_no_typo():
    rng = random.Random(3)
    for _ in range(300):
        typed = as_typed("LSTM torch.nn.Linear", rng)
        assert typed.lower() in ("lstm torch.nn.linear",)


def test_never_empty():
    assert as_typed("?", random.Random(0)) == "?"
    for seed in range(20):
        assert as_typed("Why?", random.Random(seed)).strip()
