"""The trainer on the tiny preset: determinism, resuming, stage selection, run-dir rules."""

from __future__ import annotations

import json

import pytest
import torch
from training_fakes import train_tiny as _train

from celltext.registry.checkpoint import load_checkpoint, read_metadata
from celltext.training.presets import load_preset
from celltext.training.trainer import RunDirError, Trainer, train


def test_tiny_run_produces_a_verified_checkpoint(reference):
    result = reference
    assert result.stages == ["decoder", "core", "finetune"]
    ck = load_checkpoint(result.checkpoint)
    meta = ck.metadata
    assert meta["weights_sha256"] == result.weights_sha256
    assert meta["dataset"]["version"] == "v1" and len(meta["dataset"]["sha256"]) == 64
    assert meta["training"]["preset"] == "tiny" and meta["training_time_s"] > 0
    assert meta["teacher"] == {"id": "hash-bow-teacher", "dim": 32}
    for key in ("val/cosine", "val/token_acc", "core/val/cosine", "decoder/train/loss"):
        assert key in result.metrics and key in meta["metrics"]
    assert 0.0 < result.metrics["val/cosine"] <= 1.0
    assert ck.config["preset"]["name"] == "tiny"
    assert not (result.checkpoint / "train_state").exists()
    assert (result.run_dir / "checkpoints" / "LATEST").is_file()
    with torch.no_grad():
        out = ck.model.generate(
            torch.nn.functional.normalize(torch.randn(2, 32), dim=-1), max_new_tokens=5
        )
    assert len(out) == 2


def test_same_seed_gives_bit_identical_weights(fakes, tmp_path, reference):
    again = _train(tmp_path / "again")
    assert again.weights_sha256 == reference.weights_sha256
    other = _train(tmp_path / "other", preset=load_preset("tiny", ["seed=1"]))
    assert other.weights_sha256 != reference.weights_sha256


class _Crash(Exception):
    pass


# tiny saves: decoder 10, end; core 10, end; finetune 5, end
@pytest.mark.parametrize("crash_at", [1, 4, 5])  # mid-decoder; core done; mid-finetune
def test_interrupted_run_resumes_to_identical_weights(
    fakes, tmp_path, monkeypatch, crash_at, reference
):
    import celltext.training.trainer as trainer_mod

    original = trainer_mod.Trainer.save_checkpoint
    calls = {"n": 0}

    def crashing_saver(self, *args, **kwargs):
        original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise _Crash()

    monkeypatch.setattr(trainer_mod.Trainer, "save_checkpoint", crashing_saver)
    with pytest.raises(_Crash):
        _train(tmp_path / "run")
    monkeypatch.setattr(trainer_mod.Trainer, "save_checkpoint", original)
    assert not (tmp_path / "run" / "final").exists()
    resumed = train(None, tmp_path / "run", resume=True, register=False, progress=False)
    assert resumed.resumed_from is not None
    assert resumed.weights_sha256 == reference.weights_sha256


def test_run_dir_rules(fakes, tmp_path):
    _train(tmp_path / "run", preset=load_preset("tiny", ["stages.finetune.enabled=false"]))
    with pytest.raises(RunDirError, match="--resume"):
        _train(tmp_path / "run")
    with pytest.raises(RunDirError, match="different preset"):
        _train(tmp_path / "run", resume=True)
    again = _train(tmp_path / "run", overwrite=True)
    assert again.stages == ["decoder", "core", "finetune"]
    with pytest.raises(RunDirError, match="nothing to resume"):
        Trainer(None, tmp_path / "empty", resume=True).setup()


def test_single_stage_and_init(fakes, tmp_path):
    full = _train(tmp_path / "full")
    core_only = _train(tmp_path / "core", stages=["core"], init=full.checkpoint)
    assert core_only.stages == ["core"]
    a = load_checkpoint(full.checkpoint).model
    b = load_checkpoint(core_only.checkpoint).model
    decoder_b = b.decoder.state_dict()
    for name, value in a.decoder.state_dict().items():
        assert torch.equal(value, decoder_b[name]), name  # the decoder came from --init untouched
    assert read_metadata(core_only.checkpoint)["training"]["stages_completed"] == ["core"]


def test_init_with_another_core_trains_a_fresh_core_on_the_decoder(fakes, tmp_path):
    full = _train(tmp_path / "full")
    wider = load_preset("tiny", ["core.config.hidden=48"])
    run = _train(tmp_path / "core", preset=wider, stages=["core"], init=full.checkpoint)
    a, b = load_checkpoint(full.checkpoint).model, load_checkpoint(run.checkpoint).model
    for name, value in a.decoder.state_dict().items():
        assert torch.equal(value, b.decoder.state_dict()[name]), name
    assert b.core.state_dict().keys() == a.core.state_dict().keys()
    with pytest.raises(ValueError, match="no requested stage trains the core"):
        _train(tmp_path / "dec", preset=wider, stages=["decoder"], init=full.checkpoint)


def test_early_stopping_and_fp16_export(fakes, tmp_path):
    preset = load_preset(
        "tiny",
        [
            "stages.core.train.max_steps=60",
            "stages.core.train.eval_every=1",
            "stages.core.train.early_stopping_patience=2",
            "stages.core.train.lr=0.5",
            "registry.export_dtype=float16",
            "stages.finetune.enabled=false",
        ],
    )
    result = _train(tmp_path / "run", preset=preset)
    state = json.loads((tmp_path / "run" / "run.json").read_text())
    assert state["status"] == "finished"
    meta = read_metadata(result.checkpoint)
    assert meta["weights_dtype"] == "float16"
    assert meta["training"]["step"] < 60  # stopped early


def test_bf16_autocast_and_gradient_checkpointing(fakes, tmp_path):
    preset = load_preset(
        "tiny",
        [
            "stages.decoder.train.mixed_precision=bf16",
            "stages.decoder.train.gradient_checkpointing=true",
            "stages.core.train.mixed_precision=fp16",  # no GPU: falls back to float32
            "stages.finetune.enabled=false",
        ],
    )
    result = _train(tmp_path / "run", preset=preset)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())
    model = load_checkpoint(result.checkpoint).model
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all("_ct_orig_forward" not in b.__dict__ for b in model.decoder.modules())
