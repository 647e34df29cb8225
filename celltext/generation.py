"""The one decoding loop: greedy, beam search and top-k/top-p sampling over a step function.

Every answer celltext writes goes through :func:`generate`, whatever runs the network: the
PyTorch decoders (:class:`celltext.models.stepper.TorchStepper`) and the onnxruntime
sessions (:class:`celltext.inference.onnx_backend.OrtStepper`) only provide a
:class:`Stepper`, so logit processing, stopping and beam bookkeeping exist once. The loop
is NumPy only (no torch import), which is what lets the onnxruntime path run without torch.

A :class:`Stepper` holds one batch's incremental decoder state (KV caches, recurrent
states):

- ``first() -> logits (B, V)``: consume the embedding prefix (and the prototype, for
  decoders that edit a retrieved text) and ``<bos>``; logits of the first answer token;
- ``next(tokens (B,)) -> logits (B, V)``: feed one token per row;
- ``reorder(index)``: keep/duplicate batch rows (beam search; also before ``first()``, to
  expand each row into its beams).

The options are Hugging Face ``GenerationConfig`` names. Shape legend: B batch, N beams,
V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from celltext.config import Config, require
from celltext.ngrams import banned_next_tokens


class Stepper(Protocol):
    """One batch's decoder with its incremental state (see the module docstring)."""

    def first(self) -> np.ndarray: ...

    def next(self, tokens: np.ndarray) -> np.ndarray: ...

    def reorder(self, index: np.ndarray) -> None: ...


@dataclass(frozen=True)
class SpecialTokens:
    """Token ids the loop treats specially: pad and bos are never emitted, eos stops."""

    pad_id: int
    bos_id: int
    eos_id: int


@dataclass
class GenerationOptions(Config):
    """Decoding options (Hugging Face ``GenerationConfig`` names and defaults)."""

    max_new_tokens: int = 48
    num_beams: int = 1
    do_sample: bool = False
    top_k: int = 0
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    min_new_tokens: int = 0
    length_penalty: float = 1.0

    def validate(self) -> None:
        require(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        require(self.num_beams >= 1, "num_beams", "must be >= 1")
        require(
            not (self.do_sample and self.num_beams > 1),
            "do_sample",
            "beam sampling is not supported: do_sample=True needs num_beams=1",
        )
        require(self.top_k >= 0, "top_k", "must be >= 0")
        require(0.0 < self.top_p <= 1.0, "top_p", "must be in (0, 1]")
        require(self.temperature > 0, "temperature", "must be > 0")
        require(self.repetition_penalty > 0, "repetition_penalty", "must be > 0")
        require(self.no_repeat_ngram_size >= 0, "no_repeat_ngram_size", "must be >= 0")
        require(self.min_new_tokens >= 0, "min_new_tokens", "must be >= 0")


def generate(
    stepper: Stepper,
    batch: int,
    special: SpecialTokens,
    options: GenerationOptions | None = None,
    rng: np.random.Generator | None = None,
) -> list[list[int]]:
    """Token ids (without BOS/EOS) for each of ``batch`` rows.

    Greedy search by default; beam search with ``num_beams > 1`` (the loop first expands the
    stepper to ``batch * num_beams`` rows, beams of a row adjacent, through ``reorder``,
    before any token is fed); sampling with
    ``do_sample=True`` (``temperature``, then ``top_k``/``top_p`` filtering, draws from
    ``rng``). ``repetition_penalty`` and ``no_repeat_ngram_size`` apply to every mode. Each
    sequence stops at EOS or after ``max_new_tokens`` tokens.
    """
    opts = options or GenerationOptions()
    if opts.num_beams > 1:
        stepper.reorder(np.repeat(np.arange(batch), opts.num_beams))  # (B * N,) beam rows
        return _beam_search(stepper, batch, special, opts)
    if opts.do_sample and rng is None:
        rng = np.random.default_rng()
    return _greedy_or_sample(stepper, batch, special, opts, rng if opts.do_sample else None)


def process_logits(
    logits: np.ndarray,
    history: list[list[int]],
    step: int,
    special: SpecialTokens,
    opts: GenerationOptions,
) -> np.ndarray:
    """Never emit pad/bos; repetition penalty (CTRL, Keskar et al. 2019); n-gram blocking;
    minimum length. ``history`` holds each row's generated tokens; returns a float32 copy."""
    out = np.array(logits, dtype=np.float32)  # (B, V) copy
    out[:, [special.pad_id, special.bos_id]] = -np.inf
    penalty, ngram = opts.repetition_penalty, opts.no_repeat_ngram_size
    for b, row in enumerate(history):
        if not row:
            continue
        if penalty != 1.0:
            seen = np.unique(row)
            vals = out[b, seen]
            out[b, seen] = np.where(vals > 0, vals / penalty, vals * penalty)
        if ngram > 0:
            banned = banned_next_tokens(row, ngram)
            if banned:
                out[b, list(banned)] = -np.inf
    if step < opts.min_new_tokens:
        out[:, special.eos_id] = -np.inf
    return out


def filter_top_k_top_p(logits: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
    """Keep the ``top_k`` largest logits and the smallest set with probability >= ``top_p``."""
    out = logits
    if top_k > 0:
        k = min(top_k, out.shape[-1])
        kth = np.partition(out, -k, axis=-1)[:, -k][:, None]  # (B, 1)
        out = np.where(out < kth, -np.inf, out)
    if top_p < 1.0:
        order = np.argsort(-out, axis=-1, kind="stable")  # (B, V) descending
        probs = _softmax(np.take_along_axis(out, order, axis=-1))
        remove = np.cumsum(probs, axis=-1) - probs >= top_p  # mass before this one >= p
        remove[:, 0] = False
        mask = np.zeros_like(remove)
        np.put_along_axis(mask, order, remove, axis=-1)
        out = np.where(mask, -np.inf, out)
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return z / np.sum(z, axis=-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=-1, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def _greedy_or_sample(
    stepper: Stepper,
    batch: int,
    special: SpecialTokens,
    opts: GenerationOptions,
    rng: np.random.Generator | None,
) -> list[list[int]]:
    eos = special.eos_id
    finished = np.zeros(batch, dtype=bool)
    out: list[list[int]] = [[] for _ in range(batch)]
    logits = stepper.first()
    for step in range(opts.max_new_tokens):
        logits = process_logits(logits, out, step, special, opts)
        if rng is not None:
            logits = filter_top_k_top_p(
                logits / max(opts.temperature, 1e-6), opts.top_k, opts.top_p
            )
            probs = _softmax(logits.astype(np.float64))
            nxt = np.array([rng.choice(probs.shape[1], p=p / p.sum()) for p in probs])  # (B,)
        else:
            nxt = logits.argmax(axis=-1)  # (B,)
        nxt = np.where(finished, eos, nxt).astype(np.int64)
        for b in np.flatnonzero(~finished & (nxt != eos)):
            out[b].append(int(nxt[b]))
        finished |= nxt == eos
        if finished.all() or step == opts.max_new_tokens - 1:
            break
        logits = stepper.next(nxt)
    return out


def _beam_search(
    stepper: Stepper, batch: int, special: SpecialTokens, opts: GenerationOptions
) -> list[list[int]]:
    """Beam search with early stopping once ``num_beams`` hypotheses end (HF-style).

    Scores are summed log-probabilities divided by ``length ** length_penalty`` (EOS counts
    as one token). With one beam this is exactly greedy decoding.
    """
    eos, nb, lp = special.eos_id, opts.num_beams, opts.length_penalty
    scores = np.full((batch, nb), -np.inf)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    seqs: list[list[int]] = [[] for _ in range(batch * nb)]  # generated so far, per row
    hyps: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    done = [False] * batch
    src = np.arange(batch * nb)
    tokens = np.full(batch * nb, eos, dtype=np.int64)
    new_scores = scores
    logits = stepper.first()
    for step in range(opts.max_new_tokens):
        logp = _log_softmax(process_logits(logits, seqs, step, special, opts))  # (B*N, V)
        vocab = logp.shape[-1]
        cand = (scores.reshape(-1, 1) + logp).reshape(batch, nb * vocab)  # (B, N*V)
        top_ids = np.argsort(-cand, axis=1, kind="stable")[:, : 2 * nb]  # (B, 2N)
        top_scores = np.take_along_axis(cand, top_ids, axis=1)
        src = np.arange(batch * nb)
        tokens = np.full(batch * nb, eos, dtype=np.int64)
        new_scores = np.full((batch, nb), -np.inf)
        for b in range(batch):
            if done[b]:
                continue
            kept = 0
            for rank, (s, idx) in enumerate(zip(top_scores[b], top_ids[b], strict=True)):
                beam, tok = divmod(int(idx), vocab)
                row = b * nb + beam
                if tok == eos:
                    if rank < nb and s > -np.inf:
                        hyps[b].append((float(s) / (step + 1) ** lp, seqs[row]))
                    continue
                src[b * nb + kept], tokens[b * nb + kept] = row, tok
                new_scores[b, kept] = s
                kept += 1
                if kept == nb:
                    break
            done[b] = len(hyps[b]) >= nb
        if all(done) or step == opts.max_new_tokens - 1:
            break
        scores = new_scores
        seqs = [seqs[int(r)] + [int(t)] for r, t in zip(src, tokens, strict=True)]
        stepper.reorder(src)
        logits = stepper.next(tokens)
    # out of steps: the surviving beams compete with the finished hypotheses
    for b in range(batch):
        if done[b]:
            continue
        for beam in range(nb):
            row = b * nb + beam
            s = float(new_scores[b, beam])
            if s > -np.inf:
                seq = seqs[int(src[row])] + [int(tokens[row])]
                hyps[b].append((s / len(seq) ** lp, seq))
    return [max(h, key=lambda t: t[0])[1] if h else [] for h in hyps]
