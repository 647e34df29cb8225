"""One parametrised test over the whole registry (cores and decoders), timm-style.

For every registered architecture: forward shapes, backward with finite gradients reaching
every trainable parameter, no NaN, parameter budget, save/load through safetensors with
``strict=True``, determinism on CPU for a fixed seed, and a clear error naming the expected
shape on a wrong-sized input.
"""

from __future__ import annotations

import importlib
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from celltext.models.zoo import count_parameters, create_model, list_models

for _mod in ("celltext.models.cores", "celltext.models.decoders"):  # in case __init__ lags
    importlib.import_module(_mod)

# Small overrides where the default config is slow or needs data; everything else: defaults.
OVERRIDES: dict[str, dict] = {}
BUDGETS = {"ret_v1": 1_000_000, "hybrid_cct_mamba_v1": 4_000_000}  # default configs
CORE_BUDGET = 4_500_000  # every other core at dim 384 (leaves room for a decoder)
SYSTEM_BUDGET = 10_000_000  # default hybrid core + its decoder; also a cap for every model
ENTRIES = list_models()
BATCH, LENGTH = 2, 6


def _build(entry, seed: int = 0, **extra):
    torch.manual_seed(seed)
    return create_model(entry.name, kind=entry.kind, **{**OVERRIDES.get(entry.name, {}), **extra})


def _inputs(model, entry, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(BATCH, model.cfg.dim, generator=gen), dim=-1)
    if entry.kind == "core":
        return (emb,)
    ids = torch.randint(3, model.cfg.vocab_size, (BATCH, LENGTH), generator=gen)
    ids[:, 0] = model.cfg.bos_id
    return emb, ids


def _extra(model) -> dict:
    """Retrieve-and-edit decoders also read a prototype (a keyword input); a corrector with
    feedback (``ret_correct``) also the embedding of its hypothesis."""
    if not hasattr(model, "prefix_length"):
        return {}
    gen = torch.Generator().manual_seed(1)
    extra = {"proto_ids": torch.randint(3, model.cfg.vocab_size, (BATCH, 3), generator=gen)}
    if hasattr(model, "feedback"):
        hyp = torch.randn(BATCH, model.cfg.dim, generator=gen)
        extra["hyp_emb"] = torch.nn.functional.normalize(hyp, dim=-1)
    return extra


def _check_shape(out, model, entry):
    if entry.kind == "core":
        assert out.shape == (BATCH, model.cfg.dim)
    else:
        assert out.shape == (BATCH, LENGTH, model.cfg.vocab_size)


def _loss(out, inputs, entry):
    if entry.kind == "core":
        return (out - inputs[0]).pow(2).mean() + out.mean()
    logits, ids = out[:, :-1], inputs[1][:, 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1))


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e.kind}:{e.name}" for e in ENTRIES])
def test_architecture(entry, tmp_path):
    model = _build(entry)
    inputs = _inputs(model, entry)
    extra = _extra(model)

    # forward shapes, no NaN
    out = model(*inputs, **extra)
    _check_shape(out, model, entry)
    assert torch.isfinite(out).all(), "non-finite output"

    # backward: finite gradients on every trainable parameter
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert params, "nothing to train"
    _loss(out, inputs, entry).backward()
    missing = [n for n, p in params if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    bad = [n for n, p in params if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"
    assert any(p.grad.abs().sum() > 0 for _, p in params)

    # parameter budget of the default config
    default = create_model(entry.name, kind=entry.kind)
    cap = CORE_BUDGET if entry.kind == "core" else SYSTEM_BUDGET
    assert count_parameters(default) <= BUDGETS.get(entry.name, cap)

    # save/load round trip through safetensors, strict
    model.eval()
    with torch.no_grad():
        ref = model(*inputs, **extra)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    clone = create_model(entry.name, kind=entry.kind, config=model.cfg).eval()
    saved = load_file(str(path))
    if saved:  # strict loading refuses a state dict with a key missing or extra
        first = next(iter(saved))
        with pytest.raises(RuntimeError, match="Missing key"):
            clone.load_state_dict({k: v for k, v in saved.items() if k != first}, strict=True)
        with pytest.raises(RuntimeError, match="Unexpected key"):
            clone.load_state_dict({**saved, "extra.weight": saved[first]}, strict=True)
    clone.load_state_dict(saved, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(clone(*inputs, **extra), ref, rtol=0, atol=0)

    # determinism: same seed, same weights and outputs
    again = _build(entry).eval()
    for (k, v), (k2, v2) in zip(
        model.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, v2), k
    with torch.no_grad():
        torch.testing.assert_close(again(*inputs, **extra), ref, rtol=0, atol=0)

    # a wrong-sized embedding raises an error naming the expected dimension
    wrong = torch.randn(BATCH, model.cfg.dim + 1)
    with pytest.raises(ValueError, match=rf"\(\w+, {model.cfg.dim}\)"):
        model(wrong, *inputs[1:], **extra)


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e.kind}:{e.name}" for e in ENTRIES])
def test_architecture_768(entry):
    """Every architecture works for the 768-D teacher too."""
    model = _build(entry, dim=768).eval()
    with torch.no_grad():
        out = model(*_inputs(model, entry))
    _check_shape(out, model, entry)


def test_default_hybrid_system_budget():
    core = create_model("hybrid_cct_mamba", kind="core")
    decoder = create_model("hybrid_cct_mamba", kind="decoder")
    assert count_parameters(core) + count_parameters(decoder) <= SYSTEM_BUDGET


def test_registry_is_complete():
    names = {(e.family, e.kind) for e in ENTRIES}
    for family in ("hybrid_cct_mamba", "lattice3d", "cct", "mamba", "mlp"):
        assert (family, "core") in names
    for family in ("ret", "ret_edit", "hybrid_cct_mamba", "enhanced_cct"):
        assert (family, "decoder") in names
    assert all(re.fullmatch(r"[a-z0-9_]+_v\d+", e.name) for e in ENTRIES)
