"""Speculative greedy decoding with the retrieved prototype as the draft (prompt lookup).

A retrieve-and-edit decoder mostly copies its prototype: about two answers in three are the
prototype itself, yet the plain loop (:func:`celltext.generation.generate`) pays one decoder
call per token. Here the prototype's tokens are a *draft* that the decoder verifies in one
call, as in speculative decoding (Leviathan et al. 2023, "Fast Inference from Transformers
via Speculative Decoding") with the draft looked up in a text the model is copying instead
of written by a second model (Yang et al. 2023, "Inference with Reference: Lossless
Acceleration of Large Language Models"; Saxena 2023, "Prompt Lookup Decoding").

Each round, for every row: the token chosen last (not yet fed) and its draft ``d_1..d_k``
go through :meth:`DraftStepper.verify` as one block; position i's logits give the greedy
token after the first i draft tokens, so the longest draft prefix equal to those greedy
tokens is accepted, and the greedy token after it comes for free. A row that meets
``<eos>`` or ``max_new_tokens`` is finished with every token it verified. The rows that go
on share one state, so they all advance by the shortest accepted run (a row that was
further ahead has its extra tokens proposed again by its next draft), and
:meth:`DraftStepper.keep` drops the positions past it; finished rows leave the batch
(``reorder``). The next draft: the prototype tokens that follow the last generated n-gram
in the prototype (:func:`draft`).

Every token is the argmax of the processed logits (:func:`celltext.generation.process_logits`,
so repetition penalty, n-gram blocking and ``min_new_tokens`` apply as in the plain loop) after
exactly the tokens the plain loop would have fed, so the output is plain greedy decoding's;
only the floating-point grouping of the block computation differs (tested equal on the
shipped model, ``tests/inference/test_speculative.py``). Beam search and sampling keep the
plain loop. Shapes: B rows, W block width, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from celltext.generation import GenerationOptions, SpecialTokens, Stepper, process_logits

NGRAM = 3
"""Longest generated n-gram looked up in the prototype to align the next draft."""


class DraftStepper(Stepper, Protocol):
    """A :class:`~celltext.generation.Stepper` that also verifies a block of tokens."""

    def verify(self, block: np.ndarray) -> np.ndarray:
        """Feed ``block`` (B, W); logits (B, W, V), position i's after ``block[:, i]``."""
        ...

    def keep(self, n: int) -> None:
        """Keep the first ``n`` positions of the last verified block (called right after it)."""
        ...


def prototype_tokens(proto_ids: np.ndarray, pad_id: int) -> list[list[int]]:
    """The prototype ids (B, P), right-padded with ``pad_id``, as token lists."""
    return [[int(t) for t in row if t != pad_id] for row in np.asarray(proto_ids)]


class Lookup:
    """One row's prototype tokens, indexed by n-gram (n <= ``ngram``) for :meth:`draft`."""

    def __init__(self, proto: Sequence[int], ngram: int = NGRAM):
        self.proto, self.ngram = [int(t) for t in proto], ngram
        self.starts: dict[tuple[int, ...], list[int]] = {}
        for n in range(1, ngram + 1):
            for s in range(len(self.proto) - n + 1):
                self.starts.setdefault(tuple(self.proto[s : s + n]), []).append(s)

    def find(self, gram: Sequence[int], near: int) -> int | None:
        """Start of the occurrence of ``gram`` nearest to position ``near`` (ties: the
        earlier), or None."""
        starts = self.starts.get(tuple(gram))
        return min(starts, key=lambda s: (abs(s - near), s)) if starts else None

    def draft(self, history: Sequence[int], limit: int) -> list[int]:
        """Up to ``limit`` prototype tokens guessed to follow ``history`` (the row's tokens
        so far, the last one chosen but not yet fed).

        The longest tail of ``history`` (``ngram`` tokens down to one) found in the
        prototype continues after it (the occurrence nearest the same position wins); else,
        if the tail before the last token is found, the last token is taken as a
        substitution and the draft skips one prototype token; a first token not in the
        prototype replaces its first token. Nothing matches: no draft (a plain step).
        """
        proto, ngram = self.proto, self.ngram
        if limit <= 0 or not proto or not history:
            return []
        for n in range(min(ngram, len(history)), 0, -1):
            start = self.find(history[-n:], len(history) - n)
            if start is not None and start + n < len(proto):
                return proto[start + n : start + n + limit]
        for n in range(min(ngram, len(history) - 1), 0, -1):
            start = self.find(history[-n - 1 : -1], len(history) - n - 1)
            if start is not None:
                return proto[start + n + 1 : start + n + 1 + limit]
        return proto[1 : 1 + limit] if len(history) == 1 else []


def draft(
    proto: Sequence[int], history: Sequence[int], limit: int, ngram: int = NGRAM
) -> list[int]:
    """:meth:`Lookup.draft` for one prototype (``Lookup(proto, ngram).draft(history, limit)``)."""
    return Lookup(proto, ngram).draft(history, limit)


def greedy_run(
    logits: np.ndarray, history: list[int], guess: list[int], special: SpecialTokens,
    opts: GenerationOptions,
) -> list[int]:  # fmt: skip
    """The greedy tokens of one row's verified block: ``logits`` (1 + k, V) after the last
    chosen token and after each of the ``guess`` tokens (k). Returns the accepted guesses
    and the greedy token after them (the first disagreement, or the token after a fully
    accepted guess)."""
    rows = len(guess) + 1
    hists = [history + guess[:i] for i in range(rows)]
    # process_logits takes one step count for all rows; min_new_tokens is applied per row
    scores = process_logits(logits[:rows], hists, opts.min_new_tokens, special, opts)
    steps = np.array([len(h) for h in hists])
    scores[steps < opts.min_new_tokens, special.eos_id] = -np.inf
    chosen = scores.argmax(axis=-1)  # (1 + k,)
    n = 0
    while n < len(guess) and chosen[n] == guess[n]:
        n += 1
    return [int(t) for t in chosen[: n + 1]]


def generate(
    stepper: DraftStepper,
    protos: list[list[int]],
    special: SpecialTokens,
    options: GenerationOptions | None = None,
    max_draft: int = 64,
) -> list[list[int]]:
    """Greedy token ids (without BOS/EOS) for each row of ``stepper``, drafting from the
    row's prototype tokens ``protos`` (see the module docstring); equal to
    ``celltext.generation.generate(stepper, len(protos), special, options)`` with greedy
    options. ``max_draft``: the most draft tokens verified per row and round.

    A stepper with ``drafts_first`` (the onnxruntime one, where the export has the block
    prefill) takes ``<bos>`` and the prototype's first tokens with the prefix, in one call:
    the first round drafts before the first token is chosen."""
    opts = options or GenerationOptions()
    if opts.num_beams > 1 or opts.do_sample:
        raise ValueError("speculative decoding is greedy: num_beams=1, do_sample=False")
    limit = opts.max_new_tokens
    out: list[list[int]] = [[] for _ in protos]
    lookups = [Lookup(p) for p in protos]
    rows = list(range(len(protos)))
    if getattr(stepper, "drafts_first", False):
        guesses = [lookups[b].proto[: min(max_draft, limit)] for b in rows]
        block = _block([special.bos_id] * len(rows), guesses, special.pad_id)
        rows = _advance(stepper, stepper.first_block(block), rows, guesses, out, special, opts)
    else:
        first = process_logits(stepper.first(), out, 0, special, opts).argmax(axis=-1)  # (B,)
        for b, tok in enumerate(first):
            if tok != special.eos_id:
                out[b].append(int(tok))
        rows = [b for b in rows if first[b] != special.eos_id and len(out[b]) < limit]
        if len(rows) < len(protos) and rows:
            stepper.reorder(np.array(rows))
    while rows:
        guesses = [lookups[b].draft(out[b], min(max_draft, limit - len(out[b]))) for b in rows]
        block = _block([out[b][-1] for b in rows], guesses, special.pad_id)  # (R, W)
        if block.shape[1] == 1:  # no row has a draft: a plain step (the one-token graph)
            logits = stepper.next(block[:, 0])[:, None]  # (R, 1, V)
        else:
            logits = stepper.verify(block)  # (R, W, V)
        rows = _advance(stepper, logits, rows, guesses, out, special, opts)
    return out


def _block(last: list[int], guesses: list[list[int]], pad_id: int) -> np.ndarray:
    """Each row's unfed token then its draft, right-padded: (R, 1 + longest draft)."""
    width = 1 + max(len(g) for g in guesses)
    block = np.full((len(last), width), pad_id, dtype=np.int64)  # (R, W)
    for i, (tok, guess) in enumerate(zip(last, guesses, strict=True)):
        block[i, : 1 + len(guess)] = [tok, *guess]
    return block


def _advance(
    stepper: DraftStepper, logits: np.ndarray, rows: list[int], guesses: list[list[int]],
    out: list[list[int]], special: SpecialTokens, opts: GenerationOptions,
) -> list[int]:  # fmt: skip
    """One verified block (logits (R, W, V)): every row's greedy run is appended to ``out``
    (all of it for a row that meets ``<eos>`` or ``max_new_tokens``, which leaves the batch;
    the rows going on advance by the shortest run, the state cut back to it). Returns the
    rows still going."""
    eos, limit, width = special.eos_id, opts.max_new_tokens, logits.shape[1]
    going: dict[int, list[int]] = {}  # row position -> its greedy run
    for i, (b, guess) in enumerate(zip(rows, guesses, strict=True)):
        run = greedy_run(logits[i], out[b], guess, special, opts)
        room = limit - len(out[b])
        if eos in run or len(run) >= room:  # finished: every verified token counts
            out[b] += run[: min(room, run.index(eos) if eos in run else len(run))]
        else:
            going[i] = run
    if not going:
        return []
    cut = min(len(run) for run in going.values())  # block positions every row keeps
    if cut < width:
        stepper.keep(cut)
    for i, run in going.items():
        out[rows[i]] += run[:cut]  # accepted guesses, then the next (unfed) token
    if len(going) < len(rows):
        stepper.reorder(np.array(sorted(going)))
    return [rows[i] for i in sorted(going)]


__all__ = [
    "NGRAM", "DraftStepper", "Lookup", "draft", "generate", "greedy_run", "prototype_tokens",
]  # fmt: skip
