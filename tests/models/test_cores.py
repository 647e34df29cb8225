"""One parametrised test suite over every registered core (embedding -> embedding)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

import celltext.models.cores  # noqa: F401  (registers the cores)
from celltext.models.cores import CORE_NAMES, HybridCCTMambaConfig
from celltext.models.registry import count_parameters, create_model, list_models, resolve

CORES = [e.name for e in list_models("core")]

# small settings used for the 768-D checks, so the suite stays fast
SMALL_768 = {
    "hybrid_cct_mamba_v1": {"lattice_size": (5, 5, 4), "lattice_state": 8, "cct_dim": 32},
    "lattice3d_v1": {"lattice_size": (4, 4, 4), "state_dim": 8, "steps": 4},
    "cct_v1": {"cct_dim": 32, "n_layers": 1},
    "mamba_v1": {"lattice_size": (4, 4, 3), "lattice_state": 8},
    "mlp_v1": {"hidden": 64},
}
# per-core parameter budgets of the default configs at dim 384 (core + decoder <= 10M)
BUDGET = {"hybrid_cct_mamba_v1": 4_000_000}
DEFAULT_BUDGET = 4_500_000


def _build(name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, kind="core", **overrides)


def test_every_core_is_registered():
    assert set(CORE_NAMES) <= set(CORES)
    for family in ("hybrid_cct_mamba", "lattice3d", "cct", "mamba", "mlp"):
        assert resolve(family, "core").kind == "core"


@pytest.mark.parametrize("name", CORES)
def test_forward_shape_and_no_nan_384(name):
    model = _build(name).eval()
    x = torch.nn.functional.normalize(torch.randn(3, 384), dim=-1)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (3, 384) and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    # a fresh core starts near the identity map (residual from the input embedding)
    assert torch.nn.functional.cosine_similarity(y, x).min() > 0.95


@pytest.mark.parametrize("name", CORES)
def test_forward_shape_768(name):
    model = _build(name, dim=768, **SMALL_768.get(name, {})).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 768))
    assert y.shape == (2, 768) and torch.isfinite(y).all()


@pytest.mark.parametrize("name", CORES)
def test_backward_gives_finite_gradients_everywhere(name):
    model = _build(name, **SMALL_768.get(name, {})).train()
    x = torch.randn(4, 384)
    target = torch.randn(4, 384)
    loss = 1 - torch.nn.functional.cosine_similarity(model(x), target).mean()
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", CORES)
def test_parameter_budget(name):
    n = count_parameters(_build(name))
    assert 10_000 < n <= BUDGET.get(name, DEFAULT_BUDGET)


@pytest.mark.parametrize("name", CORES)
def test_safetensors_round_trip_strict(name, tmp_path):
    overrides = SMALL_768.get(name, {})
    model = _build(name, seed=1, **overrides).eval()
    path = tmp_path / "core.safetensors"
    save_file(model.state_dict(), str(path))
    cfg_dict = model.cfg.to_dict()
    entry = resolve(name, "core")
    fresh = entry.cls(entry.config_cls.from_dict(cfg_dict)).eval()  # different random init
    missing, unexpected = fresh.load_state_dict(load_file(str(path)), strict=True)
    assert not missing and not unexpected
    x = torch.randn(2, 384)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", CORES)
def test_deterministic_for_a_fixed_seed(name):
    overrides = SMALL_768.get(name, {})
    a, b = _build(name, seed=7, **overrides), _build(name, seed=7, **overrides)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), na
    x = torch.randn(2, 384)
    losses = []
    for model in (a, b):
        loss = model(x).square().mean()
        loss.backward()
        losses.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    assert losses[0][0] == losses[1][0]
    for ga, gb in zip(losses[0][1], losses[1][1], strict=True):
        assert torch.equal(ga, gb)


@pytest.mark.parametrize("name", CORES)
@pytest.mark.parametrize("shape", [(2, 383), (384,), (2, 3, 384)])
def test_wrong_input_shape_names_the_expected_shape(name, shape):
    model = _build(name, **SMALL_768.get(name, {}))
    with pytest.raises(ValueError, match=r"\(batch, 384\)"):
        model(torch.randn(*shape))


@pytest.mark.parametrize("name", ["hybrid_cct_mamba_v1", "lattice3d_v1", "mamba_v1"])
def test_activity_map(name):
    model = _build(name, **SMALL_768.get(name, {})).eval()
    with torch.no_grad():
        y, activity = model(torch.randn(2, 384), return_activity=True)
        y_plain = model(torch.randn(2, 384))
    lat = model.cfg.lattice_size
    steps = getattr(model.cfg, "lattice_steps", getattr(model.cfg, "steps", None))
    assert y.shape == y_plain.shape == (2, 384)
    assert activity.shape == (2, steps, *lat) and (activity >= 0).all()


def test_hybrid_bidirectional_and_resized_face():
    # CCT grid 4x4 resized onto a 5x5 face; a second Mamba stack reads the reversed order
    model = _build(
        "hybrid_cct_mamba_v1",
        map_size=(8, 8),
        lattice_size=(5, 5, 3),
        lattice_state=8,
        cct_dim=32,
        bidirectional=True,
        neighbourhood=26,
        boundary="periodic",
        cell="gru",
    )
    assert model(torch.randn(2, 384)).shape == (2, 384)


def test_paper_config():
    cfg = HybridCCTMambaConfig.paper()
    assert cfg.dim == 768 and cfg.lattice_size == (15, 15, 11) and cfg.map_size == (28, 28)
    model = create_model("hybrid_cct_mamba_v1", kind="core", config=cfg)
    assert count_parameters(model) <= 10_000_000
    assert HybridCCTMambaConfig.paper(mamba_layers=1).mamba_layers == 1
