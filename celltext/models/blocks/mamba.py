"""Mamba: a selective state-space block (Gu and Dao 2023, "Mamba: Linear-Time Sequence
Modeling with Selective State Spaces", arXiv:2312.00752, Algorithm 2 / Section 3).

Shape legend: B batch, L sequence length, D model width (``d_model``), E inner width
(``expand * d_model``), N state size (``d_state``), R rank of the Δ projection (``dt_rank``),
K depthwise convolution width (``d_conv``).

One set of weights, three code paths that compute the same function:

- ``MambaBlock.forward(x)``: :func:`selective_scan`, a *chunked parallel scan*. All chunks
  of the sequence run at once from a zero state; their totals are combined by :func:`pscan`
  (a blocked reduce-then-scan with a custom backward that is the same scan in reverse); a
  second pass re-runs every chunk from its true start state. Only decay factors in (0, 1] are
  ever multiplied (no division, no exp of a growing cumulative sum), so it is stable in
  float32 at any length, and the (B, L, E, N) state tensor is never materialised.
- ``MambaBlock.forward(x, reference=True)``: :func:`selective_scan_ref`, the slow and
  obvious sequential loop of equation (2a)/(2b) of the paper.
- ``MambaBlock.step(x, cache) -> (y, cache)``: continue after a cached (conv, ssm) state
  (:meth:`MambaBlock.allocate_cache` makes the zero state): one token is the O(1)
  recurrence of token-by-token decoding; a chunk (the decoder's prefill) runs the parallel
  scan and adds the cached state's decayed contribution in closed form.

When the ``mamba_ssm`` CUDA kernels import and the input is on a GPU, ``forward`` uses
``selective_scan_fn`` instead; CPU never needs them. The structure follows the reference
implementation and alxndrTL's mamba.py (``mambapy/mamba.py``), written anew here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from celltext.config import Config, require
from celltext.models.blocks.norms import RMSNorm

try:  # optional fused CUDA kernel; never required
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _cuda_scan
except Exception:  # noqa: BLE001 - any import failure means "not available"
    _cuda_scan = None


@dataclass
class MambaConfig(Config):
    """Hyper-parameters of one Mamba block (defaults follow the paper)."""

    d_model: int = 64
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | str = "auto"  # "auto" -> ceil(d_model / 16)
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    dt_scale: float = 1.0
    bias: bool = False  # bias of the in/out projections
    conv_bias: bool = True
    chunk_size: int = 16  # chunk length of the chunked parallel scan
    use_cuda_kernel: bool = True  # use mamba_ssm's kernel when importable and on a GPU

    def validate(self) -> None:
        require(self.d_model > 0, "d_model", "must be > 0")
        require(self.d_state > 0, "d_state", "must be > 0")
        require(self.d_conv > 0, "d_conv", "must be > 0")
        require(self.expand > 0, "expand", "must be > 0")
        require(
            self.dt_rank == "auto" or (isinstance(self.dt_rank, int) and self.dt_rank > 0),
            "dt_rank",
            "must be 'auto' or a positive integer",
        )
        require(0 < self.dt_min <= self.dt_max, "dt_min", "need 0 < dt_min <= dt_max")
        require(self.dt_init_floor > 0, "dt_init_floor", "must be > 0")
        require(self.chunk_size >= 2, "chunk_size", "must be >= 2")

    @property
    def d_inner(self) -> int:
        """E = expand * d_model."""
        return self.expand * self.d_model

    @property
    def rank(self) -> int:
        """R, the resolved ``dt_rank``."""
        return math.ceil(self.d_model / 16) if self.dt_rank == "auto" else int(self.dt_rank)


# -- the scan h_t = a_t * h_{t-1} + b_t ------------------------------------------------------


def _scan_sequential(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t along dim 0 with h_{-1} = 0 (no autograd)."""
    h = torch.empty_like(b)
    h[0] = b[0]
    for t in range(1, a.shape[0]):
        torch.addcmul(b[t], a[t], h[t - 1], out=h[t])
    return h


def _scan_blocked(a: torch.Tensor, b: torch.Tensor, chunk: int) -> torch.Tensor:
    """Blocked parallel scan of h_t = a_t * h_{t-1} + b_t along dim 0 (no autograd).

    a, b: (L, *S), time-major so that every slice below is a few large contiguous blocks.
    The sequence is cut into ``nc`` chunks of ``chunk`` steps. Each chunk is reduced to its
    total (prod a, end state from zero) -- all chunks at once, one vectorised op per in-chunk
    step; the totals are scanned by the same algorithm (recursively), which gives the state
    entering every chunk; a second in-chunk pass, again over all chunks at once, writes the
    states from there. This is the reduce-then-scan form of a parallel prefix scan with the
    associative operator (a1, b1) then (a2, b2) = (a1 * a2, a2 * b1 + b2) (Blelloch 1990).
    """
    length, rest = a.shape[0], a.shape[1:]
    if length <= chunk:
        return _scan_sequential(a, b)
    nc = (length + chunk - 1) // chunk  # ceil; traced shapes divide by truncation
    pad = nc * chunk - length
    if pad:  # identity elements (a=1, b=0) at the end
        a = torch.cat([a, a.new_ones(pad, *rest)])
        b = torch.cat([b, b.new_zeros(pad, *rest)])
    a4 = a.reshape(nc, chunk, *rest)  # (nc, c, *S)
    b4 = b.reshape(nc, chunk, *rest)  # (nc, c, *S)
    # reduce: every chunk's total decay and its end state when started from zero
    a_total = a4.prod(dim=1)  # (nc, *S)
    h_end = b4[:, 0].clone()  # (nc, *S)
    for t in range(1, chunk):
        h_end.mul_(a4[:, t]).add_(b4[:, t])
    # scan the totals: state at the end of every chunk, hence the state entering it
    carry = _scan_blocked(a_total, h_end, chunk)  # (nc, *S)
    h = torch.empty_like(b4)
    h[0, 0] = b4[0, 0]
    torch.addcmul(b4[1:, 0], a4[1:, 0], carry[:-1], out=h[1:, 0])
    for t in range(1, chunk):
        torch.addcmul(b4[:, t], a4[:, t], h[:, t - 1], out=h[:, t])
    return h.reshape(nc * chunk, *rest)[:length]


class _PScan(torch.autograd.Function):
    """Autograd wrapper: forward and backward are both blocked scans.

    With G_t = dLoss/dh_t in total, G_t = g_t + a_{t+1} G_{t+1} (a reverse scan), and then
    dLoss/db_t = G_t, dLoss/da_t = G_t * h_{t-1}.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, chunk: int) -> torch.Tensor:
        h = _scan_blocked(a.detach(), b.detach(), chunk)
        ctx.save_for_backward(a, h)
        ctx.chunk = chunk
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        a, h = ctx.saved_tensors
        a_next = torch.cat([a[1:], torch.zeros_like(a[:1])])  # a_{t+1}
        grad_b = _scan_blocked(a_next.flip(0), grad_h.flip(0), ctx.chunk).flip(0)
        grad_a = torch.empty_like(a)
        grad_a[0] = 0  # h_{-1} = 0
        torch.mul(grad_b[1:], h[:-1], out=grad_a[1:])  # G_t * h_{t-1}
        return grad_a, grad_b, None


def pscan(a: torch.Tensor, b: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """All states of h_t = a_t * h_{t-1} + b_t (h_{-1} = 0) along dim 0.

    a, b: (L, *S) -> h: (L, *S). Differentiable in a and b.
    """
    if a.shape != b.shape or a.dim() < 1:
        raise ValueError(f"pscan needs a and b of one shape (L, ...), got {a.shape}, {b.shape}")
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        # The blocked scan writes through ``out=`` views, which tracing (and so the ONNX
        # exporter) does not record; export a functional recurrence instead.
        return _scan_functional(a, b)
    return _PScan.apply(a, b, chunk)


def _scan_functional(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t along dim 0, without in-place writes (for tracing)."""
    hs = [b[0]]
    for t in range(1, a.shape[0]):
        hs.append(a[t] * hs[-1] + b[t])
    return torch.stack(hs)


# -- selective scan (S6) ----------------------------------------------------------------------


def selective_scan(
    x: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    chunk: int = 16,
) -> torch.Tensor:
    """Chunked parallel selective scan. x, delta: (B, L, E); A: (E, N); B, C: (B, L, N); D: (E,).

    Discretisation (zero-order hold for A, Euler for B, as in the paper's code):
    a_t = exp(Δ_t A), b_t = Δ_t B_t x_t; h_t = a_t h_{t-1} + b_t; y_t = C_t h_t + D x_t.

    The sequence is cut into ``nc`` chunks of ``chunk`` steps, processed all at once:
    pass 1 runs every chunk from a zero state to get its end state; the chunk totals
    (exp(A ΣΔ), end state) are combined by :func:`pscan`, which gives the state entering every
    chunk; pass 2 re-runs every chunk from that state and reads out y. Decays are computed per
    step and never stored for the whole sequence, so the (B, L, E, N) state tensor is never
    materialised (the Mamba kernel's trick, in plain PyTorch), and only factors in (0, 1] are
    multiplied, so it is stable at any length.
    """
    bsz, length, _ = x.shape
    nc = (length + chunk - 1) // chunk  # ceil; traced shapes divide by truncation
    pad = nc * chunk - length

    def chunked(t: torch.Tensor, pattern: str) -> torch.Tensor:
        # (B, L, F) -> chunk-step-major layout with zero padding (Δ = 0 is the identity step)
        return rearrange(F.pad(t, (0, 0, 0, pad)), pattern, c=chunk)

    dl = chunked(delta, "b (k c) e -> c k b e 1")  # (c, nc, B, E, 1)
    du = chunked(delta * x, "b (k c) e -> c k b e 1")  # (c, nc, B, E, 1)
    Bc = chunked(B, "b (k c) n -> c k b 1 n")  # (c, nc, B, 1, N)
    Cc = chunked(C, "b (k c) n -> c k b n 1")  # (c, nc, B, N, 1)
    # pass 1: end state of every chunk started from zero
    h = x.new_zeros(nc, bsz, x.shape[-1], A.shape[1])  # (nc, B, E, N)
    for t in range(chunk):
        h = torch.exp(dl[t] * A) * h + du[t] * Bc[t]
    # combine the chunk totals: the state entering every chunk
    carry = pscan(torch.exp(dl.sum(0) * A), h, chunk)  # (nc, B, E, N), state at chunk ends
    h = torch.cat([torch.zeros_like(carry[:1]), carry[:-1]])  # (nc, B, E, N)
    # pass 2: the states again, from the right start, read out through C
    ys = []
    for t in range(chunk):
        h = torch.exp(dl[t] * A) * h + du[t] * Bc[t]
        ys.append(h @ Cc[t])  # (nc, B, E, 1)
    y = rearrange(torch.stack(ys), "c k b e 1 -> b (k c) e")[:, :length]  # (B, L, E)
    return y + D * x


def selective_scan_ref(
    x: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
) -> torch.Tensor:
    """The sequential reference of :func:`selective_scan` (same arguments, one step at a time)."""
    batch, length, inner = x.shape
    h = x.new_zeros(batch, inner, A.shape[1])  # (B, E, N)
    ys = []
    for t in range(length):
        dA = torch.exp(delta[:, t].unsqueeze(-1) * A)  # (B, E, N)
        dBx = (delta[:, t] * x[:, t]).unsqueeze(-1) * B[:, t].unsqueeze(1)  # (B, E, N)
        h = dA * h + dBx
        ys.append(torch.einsum("ben,bn->be", h, C[:, t]))  # (B, E)
    return torch.stack(ys, dim=1) + D * x  # (B, L, E)


# -- the block --------------------------------------------------------------------------------


class MambaCache(NamedTuple):
    """Recurrent state of one block: the last K-1 conv inputs and the SSM state."""

    conv: torch.Tensor  # (B, E, K-1)
    ssm: torch.Tensor  # (B, E, N)


class MambaBlock(nn.Module):
    """in_proj -> (x, z); x -> causal depthwise conv -> SiLU -> S6 scan; y * SiLU(z) -> out_proj."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        self.cfg = cfg
        e, n, r = cfg.d_inner, cfg.d_state, cfg.rank
        self.in_proj = nn.Linear(cfg.d_model, 2 * e, bias=cfg.bias)
        self.conv1d = nn.Conv1d(
            e, e, cfg.d_conv, groups=e, padding=cfg.d_conv - 1, bias=cfg.conv_bias
        )
        self.x_proj = nn.Linear(e, r + 2 * n, bias=False)  # -> Δ (low rank), B, C
        self.dt_proj = nn.Linear(r, e, bias=True)
        self.out_proj = nn.Linear(e, cfg.d_model, bias=cfg.bias)
        # S4D-real initialisation A = -(1..N) for every channel, stored as log(-A)
        a = torch.arange(1, n + 1, dtype=torch.float32).repeat(e, 1)  # (E, N)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(e))
        # No weight decay on the SSM's A and D (as mamba-ssm and mambapy mark them).
        self.A_log.no_weight_decay = True  # type: ignore[attr-defined]
        self.D.no_weight_decay = True  # type: ignore[attr-defined]
        self._init_dt()

    def _init_dt(self) -> None:
        """Δ bias so that softplus(bias) is log-uniform in [dt_min, dt_max] (paper, Sec. 3.6)."""
        cfg = self.cfg
        std = cfg.rank**-0.5 * cfg.dt_scale
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        u = torch.rand(cfg.d_inner)
        dt = torch.exp(u * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min))
        dt = dt.clamp(min=cfg.dt_init_floor)
        inv_softplus = dt + torch.log(-torch.expm1(-dt))
        with torch.no_grad():
            self.dt_proj.bias.copy_(inv_softplus)

    def _ssm_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x: (..., E) -> Δ (..., E), B (..., N), C (..., N), A (E, N)."""
        r, n = self.cfg.rank, self.cfg.d_state
        dt, B, C = self.x_proj(x).split([r, n, n], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        return delta, B, C, -torch.exp(self.A_log)

    def forward(self, x: torch.Tensor, reference: bool = False) -> torch.Tensor:
        """x: (B, L, D) -> (B, L, D). ``reference=True`` runs the sequential scan."""
        length = x.shape[1]
        xs, z = self.in_proj(x).chunk(2, dim=-1)  # (B, L, E) each
        xs = rearrange(xs, "b l e -> b e l")
        xs = self.conv1d(xs)[..., :length]  # causal: keep the first L outputs
        xs = F.silu(rearrange(xs, "b e l -> b l e"))  # (B, L, E)
        # the scan runs in at least float32 (a 512-step recurrence in bf16 drifts)
        dtype = torch.promote_types(xs.dtype, torch.float32)
        delta, B, C, A = (t.to(dtype) for t in self._ssm_inputs(xs))
        u, D = xs.to(dtype), self.D.to(dtype)
        if reference:
            y = selective_scan_ref(u, delta, A, B, C, D)
        elif _cuda_scan is not None and self.cfg.use_cuda_kernel and x.is_cuda:
            y = _cuda_scan(
                *(rearrange(t, "b l c -> b c l").contiguous() for t in (u, delta)),
                A.contiguous(),
                *(rearrange(t, "b l n -> b n l").contiguous() for t in (B, C)),
                D.float(),
            )
            y = rearrange(y, "b e l -> b l e")
        else:
            y = selective_scan(u, delta, A, B, C, D, self.cfg.chunk_size)
        return self.out_proj(y.to(xs.dtype) * F.silu(z))  # (B, L, D)

    def allocate_cache(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> MambaCache:
        """Zero state for ``batch`` sequences (equivalent to an empty prefix)."""
        ref = self.A_log
        kw = {"device": device or ref.device, "dtype": dtype or ref.dtype}
        cfg = self.cfg
        return MambaCache(
            torch.zeros(batch, cfg.d_inner, cfg.d_conv - 1, **kw),
            torch.zeros(batch, cfg.d_inner, cfg.d_state, **kw),
        )

    def step(self, x: torch.Tensor, cache: MambaCache) -> tuple[torch.Tensor, MambaCache]:
        """x (B, L, D) after the cached state -> y (B, L, D), the new cache (the input cache
        is not modified). One token (L = 1) is the O(1) recurrence; a longer chunk (a
        prefill) runs the conv over the cached window and the chunked parallel scan."""
        if x.shape[1] == 1:
            y, cache = self._step_token(x[:, 0], cache)
            return y.unsqueeze(1), cache
        return self._step_chunk(x, cache)

    def _step_token(self, x: torch.Tensor, cache: MambaCache) -> tuple[torch.Tensor, MambaCache]:
        """x (B, D) -> y (B, D), new cache: equations (2a)/(2b) once."""
        xs, z = self.in_proj(x).chunk(2, dim=-1)  # (B, E) each
        window = torch.cat([cache.conv, xs.unsqueeze(-1)], dim=-1)  # (B, E, K)
        xs = (window * self.conv1d.weight[:, 0]).sum(-1)  # (B, E)
        if self.conv1d.bias is not None:
            xs = xs + self.conv1d.bias
        xs = F.silu(xs)
        delta, B, C, A = self._ssm_inputs(xs)  # (B, E), (B, N), (B, N), (E, N)
        dA = torch.exp(delta.unsqueeze(-1) * A)  # (B, E, N)
        h = dA * cache.ssm + (delta * xs).unsqueeze(-1) * B.unsqueeze(1)  # (B, E, N)
        y = torch.einsum("ben,bn->be", h, C) + self.D * xs  # (B, E)
        out = self.out_proj(y * F.silu(z))  # (B, D)
        return out, MambaCache(window[..., 1:], h)

    def _step_chunk(self, x: torch.Tensor, cache: MambaCache) -> tuple[torch.Tensor, MambaCache]:
        """x (B, L, D) -> y (B, L, D), new cache. The scan from a zero state is
        :func:`selective_scan`; the cached state h0 adds ``C_t . (exp(cum_t) * h0)`` to each
        output, where ``cum_t = sum_{s<=t} Δ_s A`` (<= 0, so every factor is in (0, 1]), and the
        final state is ``exp(cum_L) * h0 + sum_s exp(cum_L - cum_s) Δ_s x_s B_s``."""
        xs, z = self.in_proj(x).chunk(2, dim=-1)  # (B, L, E) each
        window = torch.cat([cache.conv, rearrange(xs, "b l e -> b e l")], dim=-1)  # (B, E, K-1+L)
        conv = F.conv1d(window, self.conv1d.weight, self.conv1d.bias, groups=self.cfg.d_inner)
        xs = F.silu(rearrange(conv, "b e l -> b l e"))  # (B, L, E)
        dtype = torch.promote_types(xs.dtype, torch.float32)
        delta, B, C, A = (t.to(dtype) for t in self._ssm_inputs(xs))
        u, h0 = xs.to(dtype), cache.ssm.to(dtype)
        y = selective_scan(u, delta, A, B, C, self.D.to(dtype), self.cfg.chunk_size)  # (B, L, E)
        cum = torch.cumsum(delta.unsqueeze(-1) * A, dim=1)  # (B, L, E, N)
        y = y + torch.einsum("blen,bln->ble", torch.exp(cum) * h0.unsqueeze(1), C)
        inputs = (delta * u).unsqueeze(-1) * B.unsqueeze(2)  # (B, L, E, N)
        h = torch.exp(cum[:, -1]) * h0 + (torch.exp(cum[:, -1:] - cum) * inputs).sum(1)
        out = self.out_proj(y.to(xs.dtype) * F.silu(z))  # (B, L, D)
        keep = self.cfg.d_conv - 1
        return out, MambaCache(window[..., window.shape[-1] - keep :], h.to(cache.ssm.dtype))


class MambaLayer(nn.Module):
    """Pre-norm residual wrapper: ``x + Mamba(RMSNorm(x))``."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model)
        self.mamba = MambaBlock(cfg)

    def forward(self, x: torch.Tensor, reference: bool = False) -> torch.Tensor:
        """x: (B, L, D) -> (B, L, D)."""
        return x + self.mamba(self.norm(x), reference=reference)

    def allocate_cache(self, batch: int, **kwargs) -> MambaCache:
        """See :meth:`MambaBlock.allocate_cache`."""
        return self.mamba.allocate_cache(batch, **kwargs)

    def step(self, x: torch.Tensor, cache: MambaCache) -> tuple[torch.Tensor, MambaCache]:
        """x: (B, L, D) after the cached state -> (B, L, D), new cache."""
        y, cache = self.mamba.step(self.norm(x), cache)
        return x + y, cache
