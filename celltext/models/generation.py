"""Text generation shared by every decoder: greedy, beam search, top-k/top-p sampling.

A decoder that generates implements the small protocol of :class:`IncrementalDecoder`:

- ``model(emb, input_ids) -> logits (B, L, V)``: the full teacher-forced forward;
- ``model.new_state(batch) -> state``: empty incremental state (KV caches for
  attention layers, recurrent states for Mamba layers, conv buffers), with
  ``state.reorder(index)`` to select batch rows (beam search);
- ``model.decode(input_ids, state, emb=None) -> logits (B, V)``: feed new tokens (the
  first call also consumes the embedding prefix) and return the last position's logits.

With the state each new token costs O(1) in the sequence length for projections, MLPs and
Mamba layers; attention reads its cached keys (O(L), as in every KV-cached transformer).
``use_cache=False`` recomputes the whole sequence at each step: slow, obvious, and the
reference the tests compare against.

Shape legend: B batch, N beams, V vocabulary, D teacher dim.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from celltext.ngrams import banned_next_tokens



class IncrementalDecoder(Protocol):
    """What :func:`generate` needs from a decoder (see the module docstring)."""

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


class _Runner:
    """Feeds tokens to a decoder, with its incremental state or by full recomputation."""

    def __init__(
        self,
        model: IncrementalDecoder,
        emb: torch.Tensor,
        cached: bool,
        proto_ids: torch.Tensor | None = None,
    ):
        self.model, self.emb, self.cached = model, emb, cached
        self.proto = {} if proto_ids is None else {"proto_ids": proto_ids}  # (B, P)
        batch = emb.shape[0]
        bos = torch.full((batch, 1), model.cfg.bos_id, dtype=torch.long, device=emb.device)
        self.ids = bos  # (B, T) tokens so far, used without cache
        self.state = model.new_state(batch) if cached else None

    def first(self) -> torch.Tensor:
        """Logits (B, V) of the first answer token."""
        if self.cached:
            return self.model.decode(self.ids, self.state, emb=self.emb, **self.proto)
        return self.model(self.emb, self.ids, **self.proto)[:, -1]

    def next(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append ``tokens`` (B,) and return the logits (B, V) of the following position."""
        self.ids = torch.cat([self.ids, tokens[:, None]], dim=1)  # (B, T + 1)
        if self.cached:
            return self.model.decode(tokens[:, None], self.state)
        return self.model(self.emb, self.ids, **self.proto)[:, -1]

    def reorder(self, index: torch.Tensor) -> None:
        self.ids = self.ids.index_select(0, index)
        self.emb = self.emb.index_select(0, index)
        self.proto = {k: v.index_select(0, index) for k, v in self.proto.items()}
        if self.state is not None:
            self.state.reorder(index)


def _process_logits(
    logits: torch.Tensor,
    history: torch.Tensor,
    step: int,
    special: tuple[int, int, int],
    repetition_penalty: float,
    no_repeat_ngram_size: int,
    min_new_tokens: int,
) -> torch.Tensor:
    """Never emit pad/bos; repetition penalty (CTRL, Keskar et al. 2019); n-gram blocking;
    minimum length. ``special`` is (pad_id, bos_id, eos_id)."""
    pad_id, bos_id, eos_id = special
    logits = logits.float().clone()
    logits[:, [pad_id, bos_id]] = float("-inf")
    gen = history[:, 1:]  # (B, step) generated tokens, BOS dropped
    if repetition_penalty != 1.0 and gen.shape[1] > 0:
        seen = torch.gather(logits, 1, gen)
        seen = torch.where(seen > 0, seen / repetition_penalty, seen * repetition_penalty)
        logits.scatter_(1, gen, seen)
    if no_repeat_ngram_size > 0 and gen.shape[1] >= no_repeat_ngram_size:
        for b, row in enumerate(gen.tolist()):
            banned = banned_next_tokens(row, no_repeat_ngram_size)
            if banned:
                logits[b, list(banned)] = float("-inf")
    if step < min_new_tokens:
        logits[:, eos_id] = float("-inf")
    return logits


def _special(runner: _Runner) -> tuple[int, int, int]:
    cfg = runner.model.cfg
    return cfg.pad_id, cfg.bos_id, cfg.eos_id


def _filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Keep the ``top_k`` largest logits and the smallest set with probability >= ``top_p``."""
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        remove = cum - sorted_logits.softmax(-1) >= top_p  # mass before this token already >= p
        remove[:, 0] = False
        mask = torch.zeros_like(remove).scatter(1, order, remove)
        logits = logits.masked_fill(mask, float("-inf"))
    return logits


def _greedy_or_sample(
    runner: _Runner, max_new_tokens: int, sample: bool, opts: dict, gen: torch.Generator | None
) -> list[list[int]]:
    eos = runner.model.cfg.eos_id
    batch = runner.emb.shape[0]
    finished = torch.zeros(batch, dtype=torch.bool, device=runner.emb.device)
    out: list[list[int]] = [[] for _ in range(batch)]
    logits = runner.first()
    for step in range(max_new_tokens):
        logits = _process_logits(logits, runner.ids, step, _special(runner), **opts["process"])
        if sample:
            logits = logits / max(opts["temperature"], 1e-6)
            logits = _filter_top_k_top_p(logits, opts["top_k"], opts["top_p"])
            probs = logits.softmax(-1)
            nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)  # (B,)
        else:
            nxt = logits.argmax(-1)  # (B,)
        nxt = torch.where(finished, torch.full_like(nxt, eos), nxt)
        for b, tok in enumerate(nxt.tolist()):
            if not finished[b] and tok != eos:
                out[b].append(tok)
        finished |= nxt == eos
        if bool(finished.all()) or step == max_new_tokens - 1:
            break
        logits = runner.next(nxt)
    return out


def _beam_search(
    runner: _Runner, batch: int, num_beams: int, max_new_tokens: int, opts: dict
) -> list[list[int]]:
    """Beam search with early stopping once ``num_beams`` hypotheses end (HF-style).

    Scores are summed log-probabilities divided by ``length ** length_penalty`` (EOS counts
    as one token). With one beam this is exactly greedy decoding.
    """
    eos = runner.model.cfg.eos_id
    nb = num_beams
    device = runner.emb.device
    scores = torch.full((batch, nb), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    hyps: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    done = [False] * batch
    lp = opts["length_penalty"]
    logits = runner.first()
    for step in range(max_new_tokens):
        logits = _process_logits(logits, runner.ids, step, _special(runner), **opts["process"])
        logp = F.log_softmax(logits, dim=-1)  # (B*N, V)
        vocab = logp.shape[-1]
        cand = (scores.view(-1, 1) + logp).view(batch, nb * vocab)  # (B, N*V)
        top_scores, top_ids = torch.topk(cand, 2 * nb, dim=1)  # (B, 2N)
        src = torch.arange(batch * nb, device=device)
        tokens = torch.full((batch * nb,), eos, dtype=torch.long, device=device)
        new_scores = torch.full((batch, nb), float("-inf"), device=device)
        seqs = runner.ids[:, 1:].tolist()  # generated so far, per row
        for b in range(batch):
            if done[b]:
                continue
            kept = 0
            for rank, (s, idx) in enumerate(
                zip(top_scores[b].tolist(), top_ids[b].tolist(), strict=True)
            ):
                beam, tok = divmod(idx, vocab)
                row = b * nb + beam
                if tok == eos:
                    if rank < nb and s > float("-inf"):
                        hyps[b].append((s / (step + 1) ** lp, seqs[row]))
                    continue
                src[b * nb + kept] = row
                tokens[b * nb + kept] = tok
                new_scores[b, kept] = s
                kept += 1
                if kept == nb:
                    break
            done[b] = len(hyps[b]) >= nb
        if all(done) or step == max_new_tokens - 1:
            break
        scores = new_scores
        runner.reorder(src)
        logits = runner.next(tokens)
    # out of steps: the surviving beams compete with the finished hypotheses
    for b in range(batch):
        if done[b]:
            continue
        for beam in range(nb):
            row = b * nb + beam
            s = float(new_scores[b, beam])
            if s > float("-inf"):
                seq = seqs[int(src[row])] + [int(tokens[row])]
                hyps[b].append((s / len(seq) ** lp, seq))
    return [max(h, key=lambda t: t[0])[1] if h else [] for h in hyps]


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
    generator: torch.Generator | None = None,
    proto_ids: torch.Tensor | None = None,
) -> list[list[int]]:
    """Generate token ids (without BOS/EOS) for a batch of embeddings ``emb`` (B, D).

    ``proto_ids`` (B, P): prototype tokens for decoders that edit a retrieved text
    (``ret_edit``); None for plain generation.

    The options are Hugging Face's ``GenerationConfig`` names: greedy search by default
    (``num_beams=1, do_sample=False``); beam search with ``num_beams > 1`` (length-normalised
    by ``length_penalty``); sampling with ``do_sample=True`` (``temperature``, then
    ``top_k`` > 0 and/or ``top_p`` < 1 filtering; pass ``generator`` for reproducible
    draws). ``repetition_penalty`` and ``no_repeat_ngram_size`` apply to every mode. Each
    sequence stops at EOS or after ``max_new_tokens`` tokens.
    """
    if proto_ids is not None:
        proto_ids = torch.as_tensor(proto_ids, dtype=torch.long, device=param_device(model))
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    if do_sample and num_beams > 1:
        raise ValueError("beam sampling is not supported: do_sample=True needs num_beams=1")
    param = next(model.parameters())  # type: ignore[attr-defined]
    emb = torch.as_tensor(emb, dtype=param.dtype, device=param.device)
    if emb.dim() != 2 or emb.shape[1] != model.cfg.dim:
        raise ValueError(f"expected emb of shape (B, {model.cfg.dim}), got {tuple(emb.shape)}")
    was_training = model.training  # type: ignore[attr-defined]
    model.eval()  # type: ignore[attr-defined]
    try:
        opts = {
            "process": {
                "repetition_penalty": repetition_penalty,
                "no_repeat_ngram_size": no_repeat_ngram_size,
                "min_new_tokens": min_new_tokens,
            },
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "length_penalty": length_penalty,
        }
        if num_beams > 1:
            batch = emb.shape[0]
            protos = None if proto_ids is None else proto_ids.repeat_interleave(num_beams, 0)
            runner = _Runner(model, emb.repeat_interleave(num_beams, 0), use_cache, protos)
            return _beam_search(runner, batch, num_beams, max_new_tokens, opts)
        runner = _Runner(model, emb, use_cache, proto_ids)
        return _greedy_or_sample(runner, max_new_tokens, do_sample, opts, generator)
    finally:
        model.train(was_training)  # type: ignore[attr-defined]


def param_device(model: Any) -> torch.device:
    """Device of a model's first parameter."""
    return next(model.parameters()).device
