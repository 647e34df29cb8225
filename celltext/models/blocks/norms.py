"""Normalisation layers.

RMSNorm (Zhang and Sennrich 2019, "Root Mean Square Layer Normalization"): scale by the
reciprocal root-mean-square of the last dimension, no mean subtraction, no bias.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    """``y = x / sqrt(mean(x^2) + eps) * weight`` over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., D)
        fp32 = x.dtype == torch.float32 and self.weight.dtype == torch.float32
        if fp32 and not torch.jit.is_tracing():  # aten::rms_norm has no ONNX (TorchScript) export
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)  # one fused op
        # reduced precision: normalise in float32 for stability, as in Llama
        xf = x.float()
        out = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return out.to(x.dtype) * self.weight

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
