"""Mamba: the parallel scan, the sequential reference and the recurrent step agree."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from celltext.config import ConfigError
from celltext.models.blocks.mamba import (
    MambaBlock,
    MambaConfig,
    MambaLayer,
    pscan,
    selective_scan,
    selective_scan_ref,
)


def _scan_loop(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    h, out = torch.zeros_like(b[0]), []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)


def _block(dtype=torch.float64, **kw) -> MambaBlock:
    cfg = MambaConfig(**{"d_model": 12, "d_state": 5, "chunk_size": 4, **kw})
    block = MambaBlock(cfg).to(dtype)
    with torch.no_grad():  # move away from the structured init so every term matters
        block.A_log.add_(0.3 * torch.randn_like(block.A_log))
        block.D.add_(0.5 * torch.randn_like(block.D))
    return block


@pytest.mark.parametrize("length", [1, 3, 4, 7, 16, 37])
def test_pscan_matches_loop(length):
    a = torch.rand(length, 2, 3, dtype=torch.float64)
    b = torch.randn(length, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(pscan(a, b, chunk=2), _scan_loop(a, b))
    torch.testing.assert_close(pscan(a, b, chunk=4), _scan_loop(a, b))


def test_pscan_gradcheck():
    a = torch.rand(11, 2, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(11, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pscan(a, b, 3), (a, b))


def test_pscan_is_stable_in_float32_with_strong_decay():
    # decays down to exp(-200) underflow in float32; a log-space cumsum would overflow here
    length = 300
    log_a = -torch.rand(length, 4, 8) * 200.0
    a, b = log_a.exp(), torch.randn(length, 4, 8)
    h = pscan(a, b, chunk=16)
    assert torch.isfinite(h).all()
    torch.testing.assert_close(h, _scan_loop(a, b))


@pytest.mark.parametrize("length", [1, 5, 13, 33])
def test_selective_scan_matches_reference(length):
    bsz, e, n = 2, 6, 3
    x = torch.randn(bsz, length, e, dtype=torch.float64)
    delta = F.softplus(torch.randn(bsz, length, e, dtype=torch.float64))
    A = -torch.rand(e, n, dtype=torch.float64) * 3
    B, C = torch.randn(2, bsz, length, n, dtype=torch.float64)
    D = torch.randn(e, dtype=torch.float64)
    torch.testing.assert_close(
        selective_scan(x, delta, A, B, C, D, chunk=4), selective_scan_ref(x, delta, A, B, C, D)
    )


def test_selective_scan_is_stable_with_large_steps():
    # Δ·A down to -800 per step: exp(+cumsum) formulations overflow float32 here
    bsz, length, e, n = 2, 200, 4, 16
    x = torch.randn(bsz, length, e)
    delta = torch.rand(bsz, length, e) * 50
    A = -torch.arange(1, n + 1.0).repeat(e, 1)
    B, C = torch.randn(2, bsz, length, n)
    D = torch.ones(e)
    y = selective_scan(x, delta, A, B, C, D, chunk=16)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, selective_scan_ref(x, delta, A, B, C, D), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("length", [1, 6, 19])
def test_three_paths_agree(length):
    block = _block()
    x = torch.randn(3, length, 12, dtype=torch.float64)
    y_par = block(x)
    y_ref = block(x, reference=True)
    cache = block.allocate_cache(3)
    steps = []
    for t in range(length):
        y_t, cache = block.step(x[:, t : t + 1], cache)
        steps.append(y_t)
    torch.testing.assert_close(y_par, y_ref)
    torch.testing.assert_close(torch.cat(steps, dim=1), y_ref)


@pytest.mark.parametrize("split", [1, 3, 5])
def test_a_chunk_step_continues_like_token_steps(split):
    """step over a chunk (the parallel scan plus the cached state's decay) = token steps."""
    block = _block()
    x = torch.randn(2, 11, 12, dtype=torch.float64)
    y_first, cache = block.step(x[:, :split], block.allocate_cache(2))  # a prefill
    y_chunk, chunk_cache = block.step(x[:, split:], cache)  # a chunk after a state
    tokens = cache
    for t in range(split, 11):
        _, tokens = block.step(x[:, t : t + 1], tokens)
    torch.testing.assert_close(torch.cat([y_first, y_chunk], 1), block(x))
    torch.testing.assert_close(chunk_cache.ssm, tokens.ssm)
    torch.testing.assert_close(chunk_cache.conv, tokens.conv)


def test_parallel_and_reference_gradients_agree():
    block = _block()
    x = torch.randn(2, 9, 12, dtype=torch.float64, requires_grad=True)
    grads = []
    for reference in (False, True):
        block.zero_grad()
        x.grad = None
        block(x, reference=reference).pow(2).sum().backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in block.parameters()])
    for g_par, g_ref in zip(*grads, strict=True):
        torch.testing.assert_close(g_par, g_ref)


def test_float32_paths_agree():
    block = _block(torch.float32, d_model=16, d_state=8, chunk_size=8)
    x = torch.randn(2, 50, 16)
    torch.testing.assert_close(block(x), block(x, reference=True), atol=1e-5, rtol=1e-4)


def test_causal():
    block = _block()
    x = torch.randn(2, 10, 12, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 6:] += torch.randn_like(x2[:, 6:])
    y, y2 = block(x), block(x2)
    torch.testing.assert_close(y[:, :6], y2[:, :6])
    assert not torch.allclose(y[:, 6:], y2[:, 6:])


def test_step_does_not_modify_the_given_cache():
    block = _block()
    cache = block.allocate_cache(2)
    block.step(torch.randn(2, 1, 12, dtype=torch.float64), cache)
    block.step(torch.randn(2, 4, 12, dtype=torch.float64), cache)
    assert cache.conv.abs().sum() == 0 and cache.ssm.abs().sum() == 0
    assert cache.conv.shape == (2, block.cfg.d_inner, block.cfg.d_conv - 1)
    assert cache.ssm.shape == (2, block.cfg.d_inner, block.cfg.d_state)


def test_layer_is_residual_and_steps():
    layer = MambaLayer(MambaConfig(d_model=8, d_state=4)).double()
    x = torch.randn(2, 7, 8, dtype=torch.float64)
    cache = layer.allocate_cache(2)
    steps = []
    for t in range(7):
        y_t, cache = layer.step(x[:, t : t + 1], cache)
        steps.append(y_t)
    y = layer(x)
    torch.testing.assert_close(torch.cat(steps, dim=1), y)
    with torch.no_grad():
        layer.mamba.out_proj.weight.zero_()
    torch.testing.assert_close(layer(x), x)


def test_config_derived_fields_and_validation():
    cfg = MambaConfig(d_model=40)
    assert cfg.rank == math.ceil(40 / 16) and cfg.d_inner == 80
    assert MambaConfig(d_model=40, dt_rank=7).rank == 7
    assert MambaConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="dt_rank"):
        MambaConfig(dt_rank="big")
    with pytest.raises(ConfigError, match="d_state"):
        MambaConfig(d_state=0)


def test_dt_initialisation_range():
    cfg = MambaConfig(d_model=64, dt_min=0.002, dt_max=0.05)
    dt = F.softplus(MambaBlock(cfg).dt_proj.bias)
    assert dt.min() >= 0.002 * 0.999 and dt.max() <= 0.05 * 1.001


def test_onnx_export_of_the_parallel_scan_matches_pytorch():
    """The blocked scan writes through ``out=`` views that tracing cannot see; the export
    must take the functional path (a sequence of several chunks exercises the carry scan)."""
    import io

    import numpy as np
    import onnxruntime as ort

    block = _block(dtype=torch.float32).eval()
    x = torch.randn(2, 37, 12)
    buf = io.BytesIO()
    with torch.no_grad():
        expected = block(x).numpy()
        torch.onnx.export(block, (x,), buf, input_names=["x"], opset_version=17, dynamo=False)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
