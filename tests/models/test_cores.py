"""Behaviour that only the cores have; shapes, gradients, budgets, save/load and
determinism of every core are in the registry-wide suite (``test_registry_models.py``)."""

from __future__ import annotations

import pytest
import torch

import celltext.models.cores  # noqa: F401  (registers the cores)
from celltext.config import ConfigError
from celltext.models.cores import FaceCore, HybridCCTMambaConfig, Lattice3DCoreConfig
from celltext.models.zoo import count_parameters, create_model, families, list_models, resolve

CORES = [e.name for e in list_models("core")]
LATTICE_CORES = ["hybrid_cct_mamba_v1", "lattice3d_v2", "mamba_v1"]
SMALL_LATTICE = {"lattice": {"size": (4, 4, 3), "state_dim": 8, "steps": 3}}


def _build(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, kind="core", **overrides)


def test_every_core_is_registered():
    assert families("core") == (
        "cct", "hybrid_cct_mamba", "lattice3d", "mamba", "mlp", "transformer"
    )  # fmt: skip
    assert {resolve(f, "core").name for f in families("core")} <= set(CORES)


@pytest.mark.parametrize("name", CORES)
def test_a_fresh_core_starts_near_the_identity(name):
    model = _build(name).eval()
    x = torch.nn.functional.normalize(torch.randn(3, 384), dim=-1)
    with torch.no_grad():
        y = model(x)
    assert torch.nn.functional.cosine_similarity(y, x).min() > 0.95


@pytest.mark.parametrize("name", LATTICE_CORES)
def test_activity_map(name):
    model = _build(name, **SMALL_LATTICE).eval()
    x = torch.randn(2, 384)
    with torch.no_grad():
        y, activity = model(x, return_activity=True)
        y_plain = model(x)
    torch.testing.assert_close(y, y_plain, rtol=0, atol=0)
    assert activity.shape == (2, 3, 4, 4, 3) and (activity >= 0).all()


def test_hybrid_bidirectional_and_resized_face():
    # CCT grid 4x4 resized onto a 5x5 face; a second Mamba stack reads the reversed order
    model = _build(
        "hybrid_cct_mamba_v1",
        cct={"image_size": (8, 8), "dim": 32},
        lattice={
            "size": (5, 5, 3),
            "state_dim": 8,
            "neighbourhood": 26,
            "boundary": "periodic",
            "cell": "gru",
        },  # fmt: skip
        mamba={"bidirectional": True},
    )
    assert model.stage.backward_layers is not None
    assert model(torch.randn(2, 384)).shape == (2, 384)


def test_a_partial_sub_config_keeps_the_cores_own_defaults():
    cfg = HybridCCTMambaConfig(lattice={"steps": 2})
    assert cfg.lattice.steps == 2
    assert cfg.lattice.hidden_mult == HybridCCTMambaConfig().lattice.hidden_mult == 1.0
    lattice_only = Lattice3DCoreConfig.from_dict({"lattice": {"steps": 3}})
    assert lattice_only.lattice.state_dim == 16 and lattice_only.mamba.n_layers == 0
    assert cfg.replace(mamba={"d_state": 4}).mamba.n_layers == cfg.mamba.n_layers


def test_sub_config_errors_name_the_nested_field():
    with pytest.raises(ConfigError, match=r"lattice\.neighbourhood"):
        HybridCCTMambaConfig.from_dict({"lattice": {"neighbourhood": 7}})
    with pytest.raises(ConfigError, match=r"mamba\.n_layers"):
        HybridCCTMambaConfig.from_dict({"mamba": {"n_layers": -1}})


def test_lattice3d_is_the_face_core_without_mamba_layers():
    lattice, mamba = _build("lattice3d_v2"), _build("mamba_v1")
    assert type(lattice) is type(mamba) is FaceCore
    assert len(lattice.stage.forward_layers) == 0 and len(mamba.stage.forward_layers) == 2
    with_layers = _build("lattice3d_v2", mamba={"n_layers": 1})
    assert len(with_layers.stage.forward_layers) == 1


def test_paper_config():
    cfg = HybridCCTMambaConfig.paper()
    assert cfg.dim == 768 and cfg.lattice.size == (15, 15, 11) and cfg.cct.image_size == (28, 28)
    assert cfg.cct.dim == 128  # unchanged CCT fields keep the hybrid's defaults
    model = create_model("hybrid_cct_mamba_v1", kind="core", config=cfg)
    assert count_parameters(model) <= 10_000_000
    assert HybridCCTMambaConfig.paper(mamba={"n_layers": 1}).mamba.n_layers == 1
