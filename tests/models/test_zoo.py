from dataclasses import dataclass

import pytest
import torch.nn as nn

from celltext.config import Config
from celltext.models import zoo as registry


@dataclass
class _ToyConfig(Config):
    width: int = 3


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    return registry


def _toy(cfg: _ToyConfig) -> nn.Module:
    return nn.Linear(cfg.width, cfg.width)


def test_register_create_and_resolve_latest(clean_registry):
    clean_registry.register_model("toy_v1", "core", _ToyConfig)(_toy)
    clean_registry.register_model("toy_v2", "core", _ToyConfig)(_toy)
    assert clean_registry.resolve("toy").name == "toy_v2"
    model = clean_registry.create_model("toy_v1", width=5)
    assert clean_registry.count_parameters(model) == 5 * 5 + 5
    assert [e.name for e in clean_registry.list_models("core")] == ["toy_v1", "toy_v2"]


def test_registry_errors(clean_registry):
    clean_registry.register_model("toy_v1", "core", _ToyConfig)(_toy)
    with pytest.raises(ValueError, match="already registered"):
        clean_registry.register_model("toy_v1", "core", _ToyConfig)(_toy)
    with pytest.raises(ValueError, match="family_vN"):
        clean_registry.register_model("toy", "core", _ToyConfig)
    with pytest.raises(KeyError, match="unknown model"):
        clean_registry.resolve("nothing")
    with pytest.raises(KeyError, match="of kind decoder"):
        clean_registry.resolve("toy_v1", kind="decoder")


def test_same_name_as_core_and_decoder(clean_registry):
    clean_registry.register_model("toy_v1", "core", _ToyConfig)(_toy)
    clean_registry.register_model("toy_v1", "decoder", _ToyConfig)(_toy)
    with pytest.raises(KeyError, match="core and decoder"):
        clean_registry.resolve("toy_v1")
    assert clean_registry.resolve("toy", kind="decoder").kind == "decoder"


def test_tied_parameters_counted_once():
    lin = nn.Linear(4, 4, bias=False)
    model = nn.ModuleDict({"a": lin, "b": lin})
    assert registry.count_parameters(model) == 16
