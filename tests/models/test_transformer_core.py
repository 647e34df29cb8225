"""``transformer_v1``: shape, parameter budget near the shipped core, gradient flow, config
errors. (Save/load, determinism and the 768-D teacher are in ``test_registry_models.py``.)"""

from __future__ import annotations

import pytest
import torch

import celltext.models.cores  # noqa: F401  (registers the cores)
from celltext.config import ConfigError
from celltext.models.cores import TransformerCore, TransformerCoreConfig
from celltext.models.zoo import count_parameters, create_model, resolve

SHIPPED_CORE_PARAMS = 524_377  # configs/presets/default.yaml's hybrid core


def test_registered_and_shapes():
    assert resolve("transformer", "core").name == "transformer_v1"
    torch.manual_seed(0)
    model = create_model("transformer_v1", kind="core", n_tokens=8, d_model=32, n_layers=1)
    assert isinstance(model, TransformerCore)
    assert model(torch.randn(5, 384)).shape == (5, 384)
    with pytest.raises(ValueError, match=r"\(batch, 384\)"):
        model(torch.randn(5, 383))


def test_default_size_is_near_the_shipped_core():
    params = count_parameters(create_model("transformer_v1", kind="core"))
    assert abs(params - SHIPPED_CORE_PARAMS) / SHIPPED_CORE_PARAMS < 0.1


def test_gradients_reach_every_parameter_and_the_tokens_interact():
    torch.manual_seed(0)
    model = create_model("transformer_v1", kind="core", n_tokens=4, d_model=16, n_layers=2)
    x = torch.nn.functional.normalize(torch.randn(3, 384), dim=-1).requires_grad_(True)
    out = model(x)
    out[:, :96].sum().backward()  # the output's first chunk only
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # attention mixes chunks: the last input chunk moves the first output chunk
    assert x.grad[:, 288:].abs().sum() > 0


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="n_tokens"):
        TransformerCoreConfig(n_tokens=7)
    with pytest.raises(ConfigError, match="d_model"):
        TransformerCoreConfig(d_model=30, n_heads=4)
