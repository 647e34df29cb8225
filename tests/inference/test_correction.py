"""Decode mode ``correct``: search mode's candidates, then corrections kept only when closer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import celltext.models.decoders  # noqa: F401  (registers the zoo)
from celltext.index import RetrievalIndex, unit_rows
from celltext.inference.correction import CorrectionConfig, Corrector
from celltext.inference.decoding import Decoding
from celltext.inference.options import DecodingConfig
from celltext.inference.torch_backend import TorchBackend
from celltext.models.decoders.corrector import RETCorrector
from celltext.models.zoo import create_model

DIM = 64  # the hash teacher's
ANSWERS = [
    "A tokenizer splits text into tokens.",
    "Overfitting is fitting noise in the training data.",
    "A convolution slides a small filter over an input.",
    "Paris is the capital of France.",
]


class _System(nn.Module):
    def __init__(self, decoder):
        super().__init__()
        self.core, self.decoder, self.dim = nn.Identity(), decoder, DIM


@pytest.fixture()
def setup(hash_teacher):
    from serving_tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    cfg = {"dim": DIM, "vocab_size": tok.vocab_size, "d_model": 32, "n_layers": 1, "n_heads": 2,
           "n_prefix": 2, "max_proto_tokens": 12}  # fmt: skip
    editor = create_model("ret_edit_v1", "decoder", cfg).eval()
    corrector = RETCorrector.from_editor(editor, n_feedback=2).eval()
    with torch.no_grad():  # an untrained feedback MLP that visibly moves the output
        corrector.feedback[2].weight.normal_(std=0.5)
    bank = RetrievalIndex.from_pairs(ANSWERS, ANSWERS, hash_teacher, "tiny")
    decoding = Decoding(TorchBackend(_System(editor), tok), hash_teacher, bank)
    return Corrector(decoding, corrector), hash_teacher


def _targets(teacher):
    texts = ["A tokenizer splits the data into noise.", "Paris is a filter of France."]
    return unit_rows(teacher.encode(texts))


def _cos(teacher, texts, embs):
    return np.sum(unit_rows(teacher.encode(texts)) * embs, axis=1)


def test_correction_never_lowers_the_teacher_cosine(setup):
    corr, teacher = setup
    embs, opts = _targets(teacher), DecodingConfig()
    start = corr.texts(embs, opts, CorrectionConfig(steps=0, beam=1))
    out = corr.texts(embs, opts, CorrectionConfig(steps=2, beam=2, samples=1))
    assert len(out) == 2
    assert np.all(_cos(teacher, out, embs) >= _cos(teacher, start, embs) - 1e-6)


def test_without_steps_it_is_search_mode(setup):
    corr, teacher = setup
    embs, opts = _targets(teacher), DecodingConfig()
    search = corr.decoding.texts(embs, opts, "search")
    assert corr.texts(embs, opts, CorrectionConfig(steps=0)) == search


def test_beams_are_sorted_bounded_and_deterministic(setup):
    corr, teacher = setup
    embs, opts = _targets(teacher), DecodingConfig()
    cfg = CorrectionConfig(steps=2, beam=3, samples=2, prototypes=2)
    rows = corr.search(embs, opts, cfg)
    for row in rows:
        assert 1 <= len(row.beam) <= 3
        scores = [row.seen[t][0] for t in row.beam]
        assert scores == sorted(scores, reverse=True)
        assert row.best() == max(row.seen, key=lambda t: row.seen[t][0])
    again = corr.search(embs, opts, cfg)
    assert [r.beam for r in rows] == [r.beam for r in again]


def test_rewrite_is_greedy_speculative_and_batch_invariant(setup):
    corr, teacher = setup
    embs = _targets(teacher)
    hyps = ["A tokenizer splits text into tokens.", "Paris is the capital of France."]
    he = unit_rows(teacher.encode(hyps))
    opts = DecodingConfig().generation
    both = corr.rewrite(embs, hyps, he, opts)
    alone = [
        corr.rewrite(embs[i : i + 1], hyps[i : i + 1], he[i : i + 1], opts)[0] for i in range(2)
    ]
    assert both == alone
    corr.rows = 0  # the plain loop gives the same text
    assert corr.rewrite(embs, hyps, he, opts) == both


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="beam"):
        CorrectionConfig(beam=0)


def test_decode_mode_correct_needs_a_corrector(setup, monkeypatch):
    corr, teacher = setup
    monkeypatch.delenv("CELLTEXT_CORRECTOR", raising=False)
    with pytest.raises(ValueError, match="corrector"):
        corr.decoding.texts(_targets(teacher), DecodingConfig(), "correct")


def test_decode_mode_correct_loads_the_saved_corrector(setup, tmp_path):
    corr, teacher = setup
    corr.model.save(tmp_path / "c", fp16=False)
    embs = _targets(teacher)
    opts = DecodingConfig().replace(mode="correct", correction={"weights": str(tmp_path / "c")})
    assert corr.decoding.texts(embs, opts) == corr.texts(embs, opts, opts.correction)
