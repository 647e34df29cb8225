"""``hybrid_cct_mamba_v1`` decoder: Mamba layers with attention layers interleaved.

Pure state-space models are weak at copying and associative recall; a few attention
layers among them recover it (Jamba, Lieber et al. 2024; Zamba; Waleffe et al. 2024,
"An Empirical Study of Mamba-based Language Models" (NVIDIA Mamba-2-Hybrid)). The layer
``pattern`` is a string over ``M`` (a pre-norm residual
:class:`~celltext.models.blocks.mamba.MambaLayer`) and ``A`` (a pre-norm
:class:`~celltext.models.blocks.attention.TransformerBlock`: causal attention with RoPE,
then SwiGLU). Default ``"MMAMMA"``: one attention layer per two Mamba layers, denser than
Jamba's 1:7 because the model is only six layers deep and answers are short.

Incremental decoding: every layer's ``step(x, cache)``: attention layers extend a KV cache,
Mamba layers carry their (conv window, SSM state), so each token costs O(1) in Mamba layers.
The prefill (K prefix vectors + ``<bos>``) is one ``step`` over the whole chunk: the parallel
scan, not K + 1 recurrent steps.

Default: d 192, K = 8, 6 heads, Mamba d_state 16, expand 2: about 3.0M parameters.

Shape legend: B batch, T positions, d model width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from celltext.config import require
from celltext.models.blocks.mamba import MambaBlock, MambaConfig, MambaLayer
from celltext.models.decoders.base import (
    DecoderConfig,
    PrefixDecoder,
    causal_block,
)
from celltext.models.zoo import register_model


@dataclass
class HybridDecoderConfig(DecoderConfig):
    """Jamba-style hybrid decoder."""

    d_model: int = 192
    n_heads: int = 6
    n_prefix: int = 8
    mlp_ratio: float = 2.0
    pattern: str = "MMAMMA"  # M = Mamba layer, A = attention block
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2

    def validate(self) -> None:
        super().validate()
        require(
            len(self.pattern) >= 1 and set(self.pattern) <= {"M", "A"},
            "pattern",
            "must be a non-empty string of 'M' (Mamba) and 'A' (attention)",
        )
        require(self.d_state > 0, "d_state", "must be > 0")
        require(self.d_conv >= 2, "d_conv", "must be >= 2")
        require(self.expand > 0, "expand", "must be > 0")

    @property
    def n_layers(self) -> int:
        return len(self.pattern)

    def mamba_config(self) -> MambaConfig:
        """Config of each Mamba layer."""
        return MambaConfig(
            d_model=self.d_model, d_state=self.d_state, d_conv=self.d_conv, expand=self.expand
        )


@register_model("hybrid_cct_mamba_v1", kind="decoder", config_cls=HybridDecoderConfig)
class HybridDecoder(PrefixDecoder):
    """Interleaved Mamba and attention layers, conditioned by prefix vectors."""

    self_initialised = (MambaBlock,)

    def __init__(self, cfg: HybridDecoderConfig):
        super().__init__(cfg)
        mcfg = cfg.mamba_config()
        self.layers = nn.ModuleList(
            MambaLayer(mcfg) if kind == "M" else causal_block(cfg) for kind in cfg.pattern
        )
        self.init_weights()

    def sequence_layers(self) -> list[nn.Module]:
        return list(self.layers)
