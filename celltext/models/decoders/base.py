"""Shared machinery of the generative decoders: prefix conditioning, tied head, generation.

Every decoder maps a teacher embedding to text. The embedding conditions the decoder as
K learned prefix vectors (vec2text-style, Morris et al. 2023): ``Linear(D, K * d_model)``
reshaped to K positions that precede ``<bos>``; the decoder's sequence layers then read
them like ordinary tokens. Input and output embeddings are tied (Press and Wolf 2017).

Shape legend: B batch, D teacher dim, K prefix length, L token length, d model width,
V vocabulary size.

Teacher forcing: ``forward(emb, input_ids)`` with ``input_ids = [<bos>, t1, ..., tn, <eos>,
<pad>...]`` (right-padded) returns logits (B, L, V) where position i predicts
``input_ids[:, i + 1]``; train with ``cross_entropy(..., ignore_index=pad_id)``. Attention
is causal, so right padding never affects the positions before it.
Subclasses build their sequence layers and list them in order in ``sequence_layers()``.
Every sequence layer has the same two methods: ``forward(x)`` over a whole sequence (teacher
forcing) and ``step(x, cache) -> (y, cache)`` continuing after an immutable cache made by
``allocate_cache(batch)`` (attention's growing :class:`KVCache`, Mamba's fixed (conv, ssm)
state, the causal conv's window); :class:`DecoderState` holds one cache per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from celltext.config import Config, require
from celltext.models import stepper
from celltext.models.blocks.attention import TransformerBlock
from celltext.models.blocks.checkpointing import checkpointed
from celltext.models.blocks.norms import RMSNorm


@dataclass
class DecoderConfig(Config):
    """Fields every decoder has. Subclasses add their own and override the defaults."""

    dim: int = 384  # teacher embedding dimension D
    vocab_size: int = 4096  # tokenizer vocabulary V (CellTokenizer default)
    d_model: int = 128  # width d of the sequence layers
    n_prefix: int = 4  # K learned prefix vectors made from the embedding
    n_heads: int = 4  # attention heads
    mlp_ratio: float = 2.0  # SwiGLU size as a GELU-MLP ratio (hidden = 2/3 * ratio * d)
    dropout: float = 0.0
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")
        require(
            self.vocab_size > max(self.pad_id, self.bos_id, self.eos_id),
            "vocab_size",
            "must exceed the special token ids",
        )
        require(self.d_model > 0, "d_model", "must be > 0")
        require(
            self.n_heads > 0 and self.d_model % self.n_heads == 0,
            "n_heads",
            f"must divide d_model ({self.d_model})",
        )
        require(
            (self.d_model // self.n_heads) % 2 == 0,
            "n_heads",
            "d_model // n_heads must be even (RoPE)",
        )
        require(self.n_prefix >= 1, "n_prefix", "must be >= 1")
        require(self.mlp_ratio > 0, "mlp_ratio", "must be > 0")
        require(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")


class DecoderState:
    """Incremental decoding state: one cache per sequence layer (immutable tuples of tensors)
    and the number of positions consumed."""

    def __init__(self, caches: list[Any]):
        self.caches = caches
        self.pos = 0

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows ``index`` (beam search)."""
        self.caches = [stepper.reorder_tree(c, index) for c in self.caches]


def causal_block(cfg: DecoderConfig) -> TransformerBlock:
    """The decoders' attention layer: causal self-attention with RoPE, then SwiGLU."""
    return TransformerBlock(
        cfg.d_model, cfg.n_heads, cfg.mlp_ratio, causal=True, rope=True, dropout=cfg.dropout
    )


def run_layer(layer: nn.Module, x: torch.Tensor, state: DecoderState | None, index: int):
    """x: (B, T, d) -> (B, T, d) through sequence layer ``index`` of the decoder.

    Without ``state`` over the whole sequence (activation-checkpointed when enabled); with
    it, after the layer's cache ``state.caches[index]``, which is replaced by the new one.
    """
    if state is None:
        return checkpointed(layer, x)
    y, state.caches[index] = layer.step(x, state.caches[index])
    return y


def _exporting() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


class PrefixDecoder(nn.Module):
    """Base class: token embedding, embedding -> K prefix vectors, final norm, tied head."""

    cfg: DecoderConfig
    self_initialised: tuple[type[nn.Module], ...] = ()
    edits: bool = False
    """Whether the decoder edits a prototype (retrieve and edit: ``proto_ids`` inputs)."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.prefix = nn.Linear(cfg.dim, cfg.n_prefix * cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.norm_f = RMSNorm(cfg.d_model)

    # -- to implement ----------------------------------------------------------------
    def sequence_layers(self) -> list[nn.Module]:
        """The sequence layers in order (each with ``forward``, ``step``, ``allocate_cache``)."""
        raise NotImplementedError

    def _layers_forward(self, x: torch.Tensor, state: DecoderState | None) -> torch.Tensor:
        """Sequence layers: (B, T, d) -> (B, T, d); with ``state``, continue from it."""
        for i, layer in enumerate(self.sequence_layers()):
            x = run_layer(layer, x, state, i)
        return x

    # -- shared ------------------------------------------------------------------------
    def init_weights(self) -> None:
        """GPT-2 initialisation: N(0, 0.02), output projections scaled by depth.

        Submodules of the types in ``self_initialised`` keep their own initialisation
        (``MambaBlock``: Δ bias, A).
        """
        n_layers = max(1, len(self.sequence_layers()))
        own = [n + "." for n, m in self.named_modules() if isinstance(m, self.self_initialised)]
        for name, mod in self.named_modules():
            if any(name.startswith(p) for p in own):
                continue
            if isinstance(mod, (nn.Linear, nn.Embedding)):
                std = 0.02
                if name.endswith(("attn.proj", "mlp.w2", "out_proj")):
                    std = 0.02 / (2 * n_layers) ** 0.5
                nn.init.normal_(mod.weight, mean=0.0, std=std)
                if getattr(mod, "bias", None) is not None:
                    nn.init.zeros_(mod.bias)

    def _cache_kwargs(self) -> dict[str, Any]:
        """Device and dtype for new caches: those of the weights."""
        ref = self.tok_emb.weight
        return {"device": ref.device, "dtype": ref.dtype}

    def _check_emb(self, emb: torch.Tensor) -> None:
        if emb.dim() != 2 or emb.shape[1] != self.cfg.dim:
            raise ValueError(f"expected emb of shape (B, {self.cfg.dim}), got {tuple(emb.shape)}")

    def _check_ids(self, input_ids: torch.Tensor, batch: int | None) -> None:
        if input_ids.dim() != 2 or (batch is not None and input_ids.shape[0] != batch):
            want = f"({batch}, L)" if batch is not None else "(B, L)"
            raise ValueError(f"expected input_ids of shape {want}, got {tuple(input_ids.shape)}")
        if input_ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"input_ids must be integer token ids, got {input_ids.dtype}")
        if not _exporting() and input_ids.numel() and int(input_ids.max()) >= self.cfg.vocab_size:
            raise ValueError(
                f"token id {int(input_ids.max())} out of range for vocab_size {self.cfg.vocab_size}"
            )

    def embed_prefix(self, emb: torch.Tensor) -> torch.Tensor:
        """Teacher embedding (B, D) -> K prefix vectors (B, K, d)."""
        return rearrange(self.prefix(emb), "b (k d) -> b k d", k=self.cfg.n_prefix)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., d) -> logits (..., V) through the tied embedding."""
        return F.linear(self.norm_f(h), self.tok_emb.weight)

    def forward(self, emb: torch.Tensor, input_ids: torch.Tensor, **prefix: Any) -> torch.Tensor:
        """Teacher forcing: emb (B, D), input_ids (B, L) -> logits (B, L, V). ``prefix``:
        extra conditioning inputs of :meth:`embed_prefix` (``proto_ids`` of ``ret_edit``)."""
        self._check_emb(emb)
        self._check_ids(input_ids, emb.shape[0])
        head = self.embed_prefix(emb, **prefix)  # (B, K', d)
        x = torch.cat([head, self.tok_emb(input_ids)], dim=1)  # (B, K'+L, d)
        h = self._layers_forward(self.drop(x), None)
        return self.logits(h[:, head.shape[1] :])  # (B, L, V)

    def new_state(self, batch: int) -> DecoderState:
        """Empty incremental state for ``batch`` sequences (caches grow as tokens are fed)."""
        kw = self._cache_kwargs()
        return DecoderState([layer.allocate_cache(batch, **kw) for layer in self.sequence_layers()])

    def decode(
        self,
        input_ids: torch.Tensor,
        state: DecoderState,
        emb: torch.Tensor | None = None,
        all_positions: bool = False,
        **prefix: Any,
    ) -> torch.Tensor:
        """Feed ``input_ids`` (B, L) after ``state``; return the last position's logits (B, V)
        (``all_positions``: every fed token's, (B, L, V)).

        The first call (``state.pos == 0``) must pass ``emb`` (and any ``prefix`` inputs of
        :meth:`embed_prefix`) to feed the prefix.
        """
        self._check_ids(input_ids, None)
        x = self.tok_emb(input_ids)  # (B, L, d)
        if state.pos == 0:
            if emb is None:
                raise ValueError("the first decode() call needs emb to build the prefix")
            self._check_emb(emb)
            x = torch.cat([self.embed_prefix(emb, **prefix), x], dim=1)  # (B, K'+L, d)
        h = self._layers_forward(x, state)
        state.pos += x.shape[1]
        return self.logits(h[:, -input_ids.shape[1] :] if all_positions else h[:, -1])

    # ``decoder.generate(emb, max_new_tokens=48, num_beams=1, do_sample=False, ...)`` is
    # :func:`celltext.models.stepper.generate` with this decoder as ``model``: token
    # ids without BOS/EOS per embedding (B, D); see there for the strategies and options.
    generate = stepper.generate
