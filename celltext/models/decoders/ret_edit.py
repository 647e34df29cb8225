"""``ret_edit_v1``: a RET decoder with strong conditioning that can also edit a prototype.

Two ideas from the inversion literature (see ``../shared/ANCHORS.md``):

- **Soft tokens through an MLP** (vec2text, Morris et al. 2023): the embedding becomes
  ``n_prefix`` (16 by default) conditioning vectors through ``Linear(D, D) -> GELU ->
  Linear(D, K * d)`` instead of a single ``Linear``.
- **Retrieve and edit** (Guu et al. 2018, "Generating Sentences by Editing Prototypes";
  Hashimoto et al. 2018): optionally, the tokens of a retrieved *prototype* text (the
  nearest phrase-bank text to the embedding) follow the soft tokens, marked by a learned
  segment vector. The decoder then writes the text of the target embedding, copying from
  the prototype where it fits and changing what differs. Without a prototype (``proto_ids
  = None``) it is a plain generative decoder: one set of weights serves both modes, and
  the two are reported separately so retrieval is never mistaken for generation.

Prefix layout (all positions precede ``<bos>``)::

    [soft_1 .. soft_K] [proto_1 .. proto_P] [sep]   (P = 0 without a prototype)

``proto_ids`` (B, P) are right-padded with ``pad_id``; the pad positions are ordinary
prefix positions the decoder learns to ignore (training batches mix lengths).

Shape legend: B batch, D teacher dim, K soft tokens, P prototype tokens, L tokens, d width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from einops import rearrange

from celltext.config import require
from celltext.models.decoders.ret import RETConfig, RETDecoder
from celltext.models.zoo import register_model


@dataclass
class RETEditConfig(RETConfig):
    """RET decoder with MLP soft tokens and an optional prototype segment."""

    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    n_prefix: int = 16
    max_proto_tokens: int = 40  # prototype tokens kept (longer prototypes are cut)

    def validate(self) -> None:
        super().validate()
        require(self.max_proto_tokens >= 1, "max_proto_tokens", "must be >= 1")


@register_model("ret_edit_v1", kind="decoder", config_cls=RETEditConfig)
class RETEditDecoder(RETDecoder):
    """Decoder-only transformer conditioned by MLP soft tokens and, optionally, a prototype."""

    edits = True

    def __init__(self, cfg: RETEditConfig):
        super().__init__(cfg)
        d, dim = cfg.d_model, cfg.dim
        self.prefix = nn.Sequential(  # replaces RET's single Linear
            nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, cfg.n_prefix * d)
        )
        self.proto_segment = nn.Parameter(torch.zeros(d))  # added to prototype tokens
        self.sep = nn.Parameter(torch.zeros(d))  # closes the prefix
        self.init_weights()
        nn.init.normal_(self.proto_segment, std=0.02)
        nn.init.normal_(self.sep, std=0.02)

    def prefix_length(self, proto_len: int = 0) -> int:
        """Prefix positions before ``<bos>`` for a prototype of ``proto_len`` tokens."""
        return self.cfg.n_prefix + proto_len + 1

    def embed_prefix(  # type: ignore[override]
        self, emb: torch.Tensor, proto_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """emb (B, D), proto_ids (B, P) or None -> prefix (B, K + P + 1, d)."""
        soft = rearrange(self.prefix(emb), "b (k d) -> b k d", k=self.cfg.n_prefix)
        parts = [soft]
        if proto_ids is not None and proto_ids.shape[1] > 0:
            self._check_ids(proto_ids, emb.shape[0])
            parts.append(self.tok_emb(proto_ids) + self.proto_segment)  # (B, P, d)
        parts.append(self.sep.expand(emb.shape[0], 1, -1))  # (B, 1, d)
        return torch.cat(parts, dim=1)
