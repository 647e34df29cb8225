"""Stage ``correct``: the decoder edits its own hypotheses; a resume reuses them."""

from __future__ import annotations

import json

import pytest
import torch
from test_retrieve_edit_tasks import _table
from training_fakes import train_tiny as _train

from celltext.training.presets import load_preset
from celltext.training.tasks import Prototypes, nearest_rows

CORRECT = [
    "decoder.name=ret_edit",
    "decoder.config={d_model: 32, n_layers: 1, n_heads: 2, n_prefix: 2, max_proto_tokens: 8}",
    "stages.decoder.prototypes=true",
    "stages.finetune.enabled=false",
    "stages.correct.enabled=true",
    "stages.correct.train={lr: 1.0e-3, max_steps: 6, batch_size: 16, eval_every: 3, "
    "checkpoint_every: 3, log_every: 3, early_stopping_metric: val/edit_token_acc}",
]


def test_hypothesis_prototypes_are_the_rows_own_hypotheses():
    t, hyp = _table(16, seed=0), _table(16, seed=1)
    nearest = nearest_rows(t.emb, t.emb, torch.arange(16))
    protos = Prototypes(t, nearest, 6, 0.0, 0.0, hypotheses=hyp, hypothesis_rate=1.0)
    idx = torch.tensor([3, 5, 9])
    ids = protos.ids_for(idx, t)
    for row, i in zip(ids, idx.tolist(), strict=True):
        want = hyp.ids[i, 1 : int(hyp.lengths[i]) - 1]
        assert torch.equal(row[: len(want)], want)
    # without hypotheses the draws (and so the other stages' batches) are unchanged
    plain = Prototypes(t, nearest, 6, 0.3, 0.0)
    again = Prototypes(t, nearest, 6, 0.3, 0.0, hypotheses=None, hypothesis_rate=0.9)
    assert torch.equal(plain.ids_for(idx, t), again.ids_for(idx, t))


def test_correct_stage_trains_on_stored_hypotheses(fakes, tmp_path, monkeypatch):
    import celltext.training.stages as stages

    preset = load_preset("tiny", CORRECT)
    result = _train(tmp_path / "run", preset=preset)
    assert result.stages == ["decoder", "core", "correct"]
    assert "correct/val/edit_token_acc" in result.metrics
    stored = json.loads((tmp_path / "run" / stages.HYPOTHESES_FILE).read_text())
    assert len(stored["train"]) > 0 and len(stored["val"]) > 0
    assert all(isinstance(t, str) for t in stored["train"])

    def no_decoding(*args, **kwargs):
        raise AssertionError("the stored hypotheses should have been reused")

    monkeypatch.setattr(stages, "decode_hypotheses", no_decoding)
    again = stages._stage_hypotheses(
        preset.stages.correct, None, None, range(len(stored["train"])),
        range(len(stored["val"])), tmp_path / "run",
    )  # fmt: skip
    assert again == stored


def test_correct_stage_needs_prototypes():
    from celltext.config import ConfigError

    with pytest.raises(ConfigError, match="prototypes"):
        load_preset("tiny", ["stages.correct.prototypes=false"])
