"""Training a corrector: near-miss hypotheses, examples, one fine-tuning run."""

from __future__ import annotations

import random

import numpy as np
import torch

import celltext.models.decoders  # noqa: F401  (registers the zoo)
from celltext.models.decoders.corrector import RETCorrector
from celltext.models.zoo import create_model
from celltext.training.correction import (
    CorrectorArgs,
    corrupt,
    make_examples,
    synthetic_hypotheses,
    train_corrector,
    val_loss,
)

TEXTS = ["A tokenizer splits text into tokens.", "Paris is the capital of France.",
         "Overfitting is fitting noise in the training data."]  # fmt: skip


def test_corrupt_is_a_seeded_near_miss():
    vocab = ["alpha", "beta", "gamma"]
    a = [corrupt(t, vocab, random.Random(3)) for t in TEXTS]
    b = [corrupt(t, vocab, random.Random(3)) for t in TEXTS]
    assert a == b
    assert any(x != t for x, t in zip(a, TEXTS, strict=True))
    for x, t in zip(a, TEXTS, strict=True):
        assert abs(len(x.split()) - len(t.split())) <= 3


def _sets(teacher):
    e = teacher.encode(TEXTS)
    hyps = [[TEXTS[0], "A tokenizer splits text."], ["Paris is a city.", "France is big."],
            ["Overfitting is noise.", TEXTS[2]]]  # fmt: skip
    he = [teacher.encode(h) for h in hyps]
    return {"targets": TEXTS, "e": e, "hyps": hyps, "hyp_emb": he,
            "cos": [x @ e[i] for i, x in enumerate(he)]}  # fmt: skip


def test_examples_start_from_the_closest_and_never_the_target(hash_teacher):
    from serving_tiny import tiny_tokenizer

    ex = make_examples([_sets(hash_teacher)], tiny_tokenizer(), extra_hyps=0)
    tok = tiny_tokenizer()
    hyps = [tok.decode(ids) for ids in ex.hyp_ids]
    # row 0's closest is the target itself (skipped); row 2's closest too
    assert len(ex) == 1 and hyps[0].strip() in ("Paris is a city.", "France is big.")
    assert ex.e.shape == ex.hyp_emb.shape == (1, hash_teacher.dim)


def test_fine_tuning_lowers_the_loss(hash_teacher):
    from serving_tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    targets = TEXTS * 4
    vocab = sorted({w for t in TEXTS for w in t.split()})
    h = synthetic_hypotheses(hash_teacher, targets, vocab, seed=0)
    ex = make_examples([h], tok, extra_hyps=0)
    cfg = {"dim": hash_teacher.dim, "vocab_size": tok.vocab_size, "d_model": 32, "n_layers": 1,
           "n_heads": 2, "n_prefix": 2, "max_proto_tokens": 16}  # fmt: skip
    torch.manual_seed(0)
    editor = create_model("ret_edit_v1", "decoder", cfg)
    before = val_loss(RETCorrector.from_editor(editor, n_feedback=2), ex)
    args = CorrectorArgs(steps=30, batch_size=8, lr=3e-3, base_lr=3e-3, warmup=3, n_feedback=2,
                         eval_every=30)  # fmt: skip
    model, hist = train_corrector(editor, ex, ex, args)
    assert hist[-1]["val/loss"] < before
    assert not model.training and np.isfinite(hist[-1]["train/loss"])
