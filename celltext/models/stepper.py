"""The torch stepper: PyTorch decoders as a :class:`celltext.generation.Stepper`, and
``decoder.generate``.

The decoding loop itself (greedy, beam search, sampling, logit processing) is
:func:`celltext.generation.generate`, shared with the onnxruntime backend; this module only
feeds a torch decoder. A decoder implements the small protocol of
:class:`IncrementalDecoder`:

- ``model(emb, input_ids) -> logits (B, L, V)``: the full teacher-forced forward;
- ``model.new_state(batch) -> state``: empty incremental state (KV caches for attention
  layers, recurrent states for Mamba layers, conv buffers), with ``state.reorder(index)``
  to select batch rows (beam search);
- ``model.decode(input_ids, state, emb=None) -> logits (B, V)``: feed new tokens (the
  first call also consumes the embedding prefix) and return the last position's logits.

With the state each new token costs O(1) in the sequence length for projections, MLPs and
Mamba layers; attention reads its cached keys (O(L), as in every KV-cached transformer).
``use_cache=False`` recomputes the whole sequence at each step: slow, obvious, and the
reference the tests compare against.

For speculative decoding (:mod:`celltext.inference.speculative`) :class:`TorchStepper` also
feeds a block of tokens at once and returns the logits of every position
(:meth:`TorchStepper.verify`, through :func:`decode_block`, which the ONNX export traces
too), then keeps only the positions the greedy model agreed with (:meth:`TorchStepper.keep`):
attention caches are cut back; decoders with fixed-size states (Mamba, causal conv) go back
to the state before the block and feed the kept tokens again.

Shape legend: B batch, V vocabulary, D teacher dim, P prototype tokens.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from celltext import generation
from celltext.generation import GenerationOptions, SpecialTokens
from celltext.models.blocks.attention import KVCache


class IncrementalDecoder(Protocol):
    """What :class:`TorchStepper` needs from a decoder (see the module docstring)."""

    cfg: Any

    def __call__(self, emb: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor: ...

    def new_state(self, batch: int) -> Any: ...

    def decode(
        self, input_ids: torch.Tensor, state: Any, emb: torch.Tensor | None = None
    ) -> torch.Tensor: ...


def reorder_tree(obj: Any, index: torch.Tensor) -> Any:
    """Select batch rows ``index`` in every tensor of a nested cache (tuple/list/dict).

    Objects with a ``reorder(index)`` method are reordered in place and returned.
    """
    if obj is None:
        return None
    if hasattr(obj, "reorder"):
        obj.reorder(index)
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.index_select(0, index)
    if isinstance(obj, (tuple, list)):
        items = [reorder_tree(o, index) for o in obj]
        if hasattr(obj, "_fields"):  # NamedTuple
            return type(obj)(*items)
        return list(items) if isinstance(obj, list) else tuple(items)
    if isinstance(obj, dict):
        return {k: reorder_tree(v, index) for k, v in obj.items()}
    if isinstance(obj, (int, float, str, bool)):
        return obj
    raise TypeError(f"cannot reorder a cache of type {type(obj).__name__}")


def decode_block(model: Any, input_ids: torch.Tensor, state: Any) -> torch.Tensor:
    """Feed ``input_ids`` (B, L) after ``state`` (past the prefix) and return the logits of
    every position (B, L, V); ``state`` advances by L positions.

    ``model.decode`` returns only the last position's logits; verifying a draft needs all
    of them. The layers are the decoder's own ``sequence_layers()`` with their ``step``, the
    head its tied ``logits``, so this is ``decode`` without the last-position cut (the ONNX
    verify graph traces this function).
    """
    x = model.tok_emb(input_ids)  # (B, L, d)
    for i, layer in enumerate(model.sequence_layers()):
        x, state.caches[i] = layer.step(x, state.caches[i])
    state.pos += input_ids.shape[1]
    return model.logits(x)  # (B, L, V)


def truncatable(caches: list[Any]) -> bool:
    """Whether a state can be cut back to fewer positions by slicing: every layer's cache is
    an attention :class:`~celltext.models.blocks.attention.KVCache` (a Mamba or conv state
    keeps no per-position history, so it is rebuilt instead)."""
    return all(isinstance(c, KVCache) for c in caches)


class TorchStepper:
    """Feeds tokens to a torch decoder, with its incremental state or by recomputation
    (without autograd: generation never needs gradients)."""

    def __init__(
        self,
        model: IncrementalDecoder,
        emb: torch.Tensor,
        cached: bool = True,
        proto_ids: torch.Tensor | None = None,
    ):
        self.model, self.emb, self.cached = model, emb, cached
        self.proto = {} if proto_ids is None else {"proto_ids": proto_ids}  # (B, P)
        batch = emb.shape[0]
        self.ids = torch.full((batch, 1), model.cfg.bos_id, dtype=torch.long, device=emb.device)
        self.state = model.new_state(batch) if cached else None
        self.block: torch.Tensor | None = None  # the last verify() block (B, W)
        self.before: tuple[list[Any], int] | None = None  # the state before it

    @torch.no_grad()
    def first(self) -> np.ndarray:
        """Logits (B, V) of the first answer token."""
        if self.cached:
            out = self.model.decode(self.ids, self.state, emb=self.emb, **self.proto)
        else:
            out = self.model(self.emb, self.ids, **self.proto)[:, -1]
        return _numpy(out)

    @torch.no_grad()
    def next(self, tokens: np.ndarray) -> np.ndarray:
        """Append ``tokens`` (B,) and return the logits (B, V) of the following position."""
        new = torch.as_tensor(tokens, dtype=torch.long, device=self.ids.device)[:, None]
        if self.cached:
            return _numpy(self.model.decode(new, self.state))
        self.ids = torch.cat([self.ids, new], dim=1)  # (B, T + 1)
        return _numpy(self.model(self.emb, self.ids, **self.proto)[:, -1])

    @torch.no_grad()
    def verify(self, block: np.ndarray) -> np.ndarray:
        """Feed ``block`` (B, W) and return the logits (B, W, V) of every position: position
        i predicts the token after ``block[:, i]``. :meth:`keep` then says how many stay."""
        new = torch.as_tensor(block, dtype=torch.long, device=self.ids.device)  # (B, W)
        self.block, self.before = new, None
        if not self.cached:
            self.ids = torch.cat([self.ids, new], dim=1)  # (B, T + W)
            return _numpy(self.model(self.emb, self.ids, **self.proto)[:, -new.shape[1] :])
        self.before = (list(self.state.caches), self.state.pos)  # immutable tuples: no copy
        return _numpy(decode_block(self.model, new, self.state))

    @torch.no_grad()
    def keep(self, n: int) -> None:
        """Keep the first ``n`` positions of the last :meth:`verify` block, drop the rest."""
        width = self.block.shape[1]
        if n == width:
            return
        if not self.cached:
            self.ids = self.ids[:, : self.ids.shape[1] - width + n]
            return
        caches, pos = self.before
        if truncatable(caches):  # cut the attention caches back to T + n positions
            self.state.caches = [
                KVCache(c.k[:, :, : old.k.shape[2] + n], c.v[:, :, : old.v.shape[2] + n])
                for old, c in zip(caches, self.state.caches, strict=True)
            ]
            self.state.pos = pos + n
            return
        self.state.caches, self.state.pos = list(caches), pos  # the state before the block
        if n:  # fixed-size states (Mamba, conv) keep no history: feed the kept tokens again
            decode_block(self.model, self.block[:, :n], self.state)

    def reorder(self, index: np.ndarray) -> None:
        idx = torch.as_tensor(index, dtype=torch.long, device=self.ids.device)
        self.ids = self.ids.index_select(0, idx)
        self.emb = self.emb.index_select(0, idx)
        self.proto = {k: v.index_select(0, idx) for k, v in self.proto.items()}
        if self.state is not None:
            self.state.reorder(idx)


def _numpy(logits: torch.Tensor) -> np.ndarray:
    return logits.detach().float().cpu().numpy()


@torch.no_grad()
def generate(
    model: IncrementalDecoder,
    emb: torch.Tensor | np.ndarray,
    max_new_tokens: int = 48,
    num_beams: int = 1,
    do_sample: bool = False,
    top_k: int = 0,
    top_p: float = 1.0,
    temperature: float = 1.0,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    min_new_tokens: int = 0,
    length_penalty: float = 1.0,
    use_cache: bool = True,
    rng: np.random.Generator | None = None,
    proto_ids: torch.Tensor | np.ndarray | None = None,
) -> list[list[int]]:
    """Token ids (without BOS/EOS) for a batch of embeddings ``emb`` (B, D): the
    :func:`celltext.generation.generate` loop over this decoder.

    ``proto_ids`` (B, P): prototype tokens for decoders that edit a retrieved text
    (``ret_edit``); None for plain generation. ``rng`` (a NumPy generator) makes sampling
    reproducible. The other options are Hugging Face's ``GenerationConfig`` names (see
    :class:`celltext.generation.GenerationOptions`).
    """
    opts = GenerationOptions(
        max_new_tokens, num_beams, do_sample, top_k, top_p, temperature,
        repetition_penalty, no_repeat_ngram_size, min_new_tokens, length_penalty,
    )  # fmt: skip
    return generate_with(model, emb, opts, rng, proto_ids, use_cache)


@torch.no_grad()
def generate_with(
    model: IncrementalDecoder,
    emb: torch.Tensor | np.ndarray,
    options: GenerationOptions,
    rng: np.random.Generator | None = None,
    proto_ids: torch.Tensor | np.ndarray | None = None,
    use_cache: bool = True,
) -> list[list[int]]:
    """:func:`generate` with its options as one :class:`GenerationOptions`."""
    param = next(model.parameters())  # type: ignore[attr-defined]
    emb = torch.as_tensor(emb, dtype=param.dtype, device=param.device)
    if emb.dim() != 2 or emb.shape[1] != model.cfg.dim:
        raise ValueError(f"expected emb of shape (B, {model.cfg.dim}), got {tuple(emb.shape)}")
    if proto_ids is not None:
        proto_ids = torch.as_tensor(proto_ids, dtype=torch.long, device=param.device)
    cfg = model.cfg
    special = SpecialTokens(cfg.pad_id, cfg.bos_id, cfg.eos_id)
    was_training = model.training  # type: ignore[attr-defined]
    model.eval()  # type: ignore[attr-defined]
    try:
        stepper = TorchStepper(model, emb, use_cache, proto_ids)
        return generation.generate(stepper, emb.shape[0], special, options, rng)
    finally:
        model.train(was_training)  # type: ignore[attr-defined]
