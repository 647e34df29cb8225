"""Generative decoders: incremental decoding equals full recomputation, causality, conditioning."""

from __future__ import annotations

import pytest
import torch

import celltext.models.decoders  # noqa: F401  (registers the decoders)
from celltext.config import ConfigError
from celltext.models.zoo import count_parameters, create_model

SMALL = {
    "ret_v1": {"d_model": 32, "n_heads": 2, "n_layers": 2, "vocab_size": 64, "dim": 16},
    "enhanced_cct_v1": {
        "d_model": 32,
        "n_heads": 2,
        "n_layers": 2,
        "vocab_size": 64,
        "dim": 16,
        "n_prefix": 3,
    },
    "hybrid_cct_mamba_v1": {
        "d_model": 32,
        "n_heads": 2,
        "pattern": "MAM",
        "vocab_size": 64,
        "dim": 16,
        "n_prefix": 3,
    },
}
GENERATIVE = sorted(SMALL)


def _model(name: str):
    return create_model(name, kind="decoder", **SMALL[name]).eval()


@pytest.mark.parametrize("name", GENERATIVE)
def test_incremental_logits_match_full_forward(name):
    model = _model(name)
    emb = torch.randn(2, 16)
    ids = torch.randint(3, 64, (2, 7))
    ids[:, 0] = model.cfg.bos_id
    full = model(emb, ids)  # (2, 7, 64)
    state = model.new_state(2)
    # prefix + 3 tokens in one call, then one token at a time
    steps = [model.decode(ids[:, :3], state, emb=emb)]
    steps += [model.decode(ids[:, i : i + 1], state) for i in range(3, 7)]
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 2:], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", GENERATIVE)
def test_cached_generation_equals_recomputation(name):
    model = _model(name)
    emb = torch.randn(3, 16)
    greedy = model.generate(emb, max_new_tokens=6)
    assert greedy == model.generate(emb, max_new_tokens=6, use_cache=False)
    assert greedy == model.generate(emb, max_new_tokens=6, num_beams=1)
    beam = model.generate(emb, max_new_tokens=5, num_beams=3)
    assert beam == model.generate(
        emb, max_new_tokens=5, num_beams=3, use_cache=False
    )
    # batch rows are independent
    assert [model.generate(emb[i : i + 1], max_new_tokens=6)[0] for i in range(3)] == greedy
    assert all(len(s) <= 6 and all(3 <= t < 64 for t in s) for s in greedy + beam)


@pytest.mark.parametrize("name", GENERATIVE)
def test_causal_and_conditioned(name):
    model = _model(name)
    emb = torch.randn(1, 16)
    ids = torch.randint(3, 64, (1, 6))
    out = model(emb, ids)
    changed = ids.clone()
    changed[0, 4] = (changed[0, 4] + 1) % 61 + 3
    torch.testing.assert_close(model(emb, changed)[:, :4], out[:, :4])
    assert not torch.allclose(model(torch.randn(1, 16), ids), out)


@pytest.mark.parametrize("name", GENERATIVE)
def test_bad_inputs_name_expected_shape(name):
    model = _model(name)
    with pytest.raises(ValueError, match=r"\(B, 16\)"):
        model(torch.randn(2, 15), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(2, L\)"):
        model(torch.randn(2, 16), torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="vocab_size 64"):
        model(torch.randn(2, 16), torch.full((2, 3), 64))
    with pytest.raises(ValueError, match="integer"):
        model(torch.randn(2, 16), torch.zeros(2, 3))


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="n_heads"):
        create_model("ret_v1", d_model=30, n_heads=4)
    with pytest.raises(ConfigError, match="pattern"):
        create_model("hybrid_cct_mamba_v1", kind="decoder", pattern="MXA")
    with pytest.raises(ConfigError, match="conv_kernel"):
        create_model("enhanced_cct_v1", conv_kernel=1)


def test_default_sizes_and_tied_head():
    ret = create_model("ret_v1")
    assert count_parameters(ret) <= 1_000_000
    assert ret.cfg.vocab_size == 4096
    # tied: the output projection is the embedding table (no separate head weight)
    assert not any("head" in n for n, _ in ret.named_parameters())
    assert count_parameters(create_model("ret_v1", dim=768)) > count_parameters(ret)


def test_hybrid_keeps_mamba_initialisation():
    model = create_model("hybrid_cct_mamba_v1", kind="decoder", **SMALL["hybrid_cct_mamba_v1"])
    mamba = model.layers[0].mamba
    # Δ bias is softplus^-1 of dt in [1e-3, 0.1] (negative), not re-initialised to zero
    assert (mamba.dt_proj.bias < 0).all()
    assert torch.allclose(mamba.A_log[0].exp(), torch.arange(1, 17).float())


def test_ret_int8_quantization_close():
    model = _model("ret_v1")
    emb = torch.randn(2, 16)
    ids = torch.randint(3, 64, (2, 5))
    qmodel = model.quantize_int8()
    ref, out = model(emb, ids), qmodel(emb, ids)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 0.1 * ref.abs().max() + 1e-3
    assert len(qmodel.generate(emb, max_new_tokens=4)) == 2


def test_train_mode_dropout_changes_output_and_generate_restores_mode():
    model = create_model("ret_v1", **SMALL["ret_v1"], dropout=0.5).train()
    emb, ids = torch.randn(2, 16), torch.randint(3, 64, (2, 5))
    assert not torch.allclose(model(emb, ids), model(emb, ids))
    model.generate(emb, max_new_tokens=2)
    assert model.training
