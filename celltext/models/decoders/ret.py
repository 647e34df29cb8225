"""``ret_v1``: the "Resource-Efficient Transformer" decoder.

A small decoder-only transformer (nanoGPT shape, Llama parts): embedding -> K prefix
vectors, pre-norm blocks with RMSNorm, RoPE, SwiGLU; tied input/output embeddings.
Default: 4096 x 128 vocabulary, 2 layers, 4 heads, K = 4, 0.99M parameters at D = 384
(the issue's <= 1M budget includes the embedding table, which is half of it).

``quantize_int8()`` returns a CPU copy with dynamic int8 ``nn.Linear`` weights
(``torch.ao.quantization.quantize_dynamic``): about 4x smaller linear weights, usually
faster matmuls on CPU; the tied embedding stays float32.

Shape legend: B batch, T positions (K prefix + tokens), d model width.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn

from celltext.config import require
from celltext.models.decoders.base import (
    DecoderConfig,
    PrefixDecoder,
    causal_block,
)
from celltext.models.zoo import register_model


@dataclass
class RETConfig(DecoderConfig):
    """Resource-Efficient Transformer decoder."""

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    n_prefix: int = 4
    mlp_ratio: float = 2.0

    def validate(self) -> None:
        super().validate()
        require(self.n_layers >= 1, "n_layers", "must be >= 1")


@register_model("ret_v1", kind="decoder", config_cls=RETConfig)
class RETDecoder(PrefixDecoder):
    """Decoder-only transformer conditioned by prefix vectors."""

    def __init__(self, cfg: RETConfig):
        super().__init__(cfg)
        self.blocks = nn.ModuleList(causal_block(cfg) for _ in range(cfg.n_layers))
        self.init_weights()

    def sequence_layers(self) -> list[nn.Module]:
        return list(self.blocks)

    def quantize_int8(self) -> RETDecoder:
        """A CPU copy with int8 dynamically-quantised linear layers (inference only)."""
        model = copy.deepcopy(self).cpu().eval()
        # torch.ao eager quantization is deprecated in favour of torchao, which is not a
        # dependency here; it still works in torch 2.13, so silence the notices.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
