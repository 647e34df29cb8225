"""Every shipped preset loads into the dataclasses, validates, and hashes stably."""

from __future__ import annotations

import pytest

from celltext.config import ConfigError
from celltext.training.args import Preset, TrainArgs
from celltext.training.presets import apply_overrides, list_presets, load_preset

SHIPPED = ("tiny", "quick", "default", "paper")


def test_all_shipped_presets_exist():
    assert set(SHIPPED) <= set(list_presets())


@pytest.mark.parametrize("name", SHIPPED)
def test_preset_loads_and_hash_is_stable(name, tmp_path):
    preset = load_preset(name)
    assert preset.name == name
    assert preset.description
    assert preset.enabled_stages()[:2] == ["decoder", "core"]
    assert load_preset(name).config_hash() == preset.config_hash()
    back = Preset.load(preset.save(tmp_path / f"{name}.yaml"))
    assert back == preset and back.config_hash() == preset.config_hash()
    for stage in ("decoder", "core", "finetune"):
        args = getattr(preset.stages, stage).train
        metric, mode = args.metric_and_mode("val/x")
        assert metric.startswith("val/") and mode in ("min", "max")


def test_paper_preset_uses_the_seed_dimensions():
    paper = load_preset("paper")
    assert paper.teacher == "mpnet"
    assert tuple(paper.core.config["lattice"]["size"]) == (15, 15, 11)


def test_overrides_and_errors_name_the_field():
    preset = load_preset("tiny", ["seed=7", "stages.core.train.lr=0.5", "data.release=v9"])
    assert preset.seed == 7 and preset.stages.core.train.lr == 0.5
    assert preset.data.release == "v9"
    with pytest.raises(ConfigError, match="stages.core.train.lrr"):
        load_preset("tiny", ["stages.core.train.lrr=1"])
    with pytest.raises(ConfigError, match="lr"):
        load_preset("tiny", ["stages.core.train.lr=-1"])
    with pytest.raises(ConfigError):
        apply_overrides({}, ["no_equals_sign"])
    with pytest.raises(FileNotFoundError, match="unknown preset"):
        load_preset("no-such-preset")


def test_metric_mode_defaults():
    assert TrainArgs().metric_and_mode("val/cosine") == ("val/cosine", "max")
    assert TrainArgs(early_stopping_metric="val/loss").metric_and_mode("x") == ("val/loss", "min")
    assert TrainArgs(early_stopping_mode="min").metric_and_mode("val/cosine")[1] == "min"
