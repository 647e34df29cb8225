"""Iterative correction with feedback: decode mode ``correct`` (vec2text, Morris et al. 2023).

Start from search mode's candidates (the plain decode, the ``prototypes`` nearest bank
answers and the decoder's edits of them), keep the ``beam`` closest by the teacher's cosine
to the target ``e``, then for up to ``steps`` rounds let a
:class:`~celltext.models.decoders.corrector.RETCorrector` rewrite every kept hypothesis from
(e, the hypothesis' tokens, its teacher embedding e_hat). New texts are embedded by the
teacher and join the beam only where they are closer than what it holds (a sequence-level
beam over texts, as vec2text's), so the answer's cosine never falls below search mode's. A
row stops when a round adds nothing to its beam.

Greedy corrections are speculative (:mod:`celltext.inference.speculative`: the hypothesis is
the draft, since a correction mostly copies it), in groups of the backend's
``speculative_rows``. Shapes: B rows, D teacher dim, H beam members, P hypothesis tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from celltext.generation import SpecialTokens, generate
from celltext.index import unit_rows
from celltext.inference import speculative
from celltext.inference.options import CorrectionConfig
from celltext.models.stepper import TorchStepper


class CorrectorStepper(TorchStepper):
    """A :class:`TorchStepper` whose prefix also reads the hypotheses' embeddings (B, D)."""

    def __init__(self, model, emb: torch.Tensor, proto_ids: torch.Tensor, hyp_emb: torch.Tensor):
        super().__init__(model, emb, True, proto_ids)
        self.proto["hyp_emb"] = hyp_emb  # reordered with the rows, like proto_ids


@dataclass
class _Row:
    """One answer's texts seen so far: text -> (cosine, teacher embedding (D,))."""

    seen: dict[str, tuple[float, np.ndarray]] = field(default_factory=dict)
    beam: list[str] = field(default_factory=list)

    def best(self) -> str:
        return self.beam[0]


class Corrector:
    """Decode mode ``correct`` over a :class:`~celltext.inference.decoding.Decoding` (its
    bank, teacher, tokenizer and decoder give the starting candidates) and a corrector."""

    def __init__(self, decoding, model, speculative_rows: int = 2, feedback: bool = True):
        self.decoding, self.model = decoding, model.eval()
        self.feedback = feedback  # False: an ablation that never shows the model e_hat
        cfg = model.cfg
        self.special = SpecialTokens(cfg.pad_id, cfg.bos_id, cfg.eos_id)
        self.rows = speculative_rows

    # -- the corrector ---------------------------------------------------------------------
    def rewrite(self, embs: np.ndarray, hyps: list[str], hyp_embs: np.ndarray, options,
                rng: np.random.Generator | None = None) -> list[str]:  # fmt: skip
        """One correction of each hypothesis: (B, D) targets, B texts, (B, D) embeddings ->
        B texts (greedy and speculative; sampled when ``options.do_sample``)."""
        tok = self.decoding.backend.tokenizer
        proto = self.decoding.proto_ids(hyps, self.model.cfg.max_proto_tokens)  # (B, P)
        as_t = lambda a, dt=torch.float32: torch.as_tensor(np.ascontiguousarray(a), dtype=dt)  # noqa: E731
        greedy = options.num_beams == 1 and not options.do_sample
        out: list[list[int]] = []
        size = self.rows if greedy and self.rows > 0 else len(hyps)
        for s in range(0, len(hyps), size):
            part = slice(s, s + size)
            stepper = CorrectorStepper(self.model, as_t(embs[part]), as_t(proto[part], torch.long),
                                       as_t(hyp_embs[part]))  # fmt: skip
            if not self.feedback:
                del stepper.proto["hyp_emb"]
            if greedy:
                drafts = speculative.prototype_tokens(proto[part], self.special.pad_id)
                out += speculative.generate(stepper, drafts, self.special, options)
            else:
                out += generate(stepper, len(proto[part]), self.special, options, rng)
        return [tok.decode(seq).strip() for seq in out]

    # -- the search ------------------------------------------------------------------------
    def texts(self, embs: np.ndarray, options, cfg: CorrectionConfig) -> list[str]:
        """Texts for (B, D) embeddings: search mode's candidates, then corrections."""
        return [r.best() for r in self.search(embs, options, cfg)]

    def search(self, embs: np.ndarray, options, cfg: CorrectionConfig) -> list[_Row]:
        """The rows' final beams (best first; see the module docstring)."""
        embs = unit_rows(np.asarray(embs, np.float32))  # (B, D)
        rows = [_Row() for _ in embs]
        self._add(rows, embs, self._start(embs, options, cfg), cfg.beam)
        active = list(range(len(rows)))
        rng = np.random.default_rng(options.seed)
        for _ in range(cfg.steps):
            if not active:
                break
            owners = [b for b in active for _ in rows[b].beam]
            hyps = [t for b in active for t in rows[b].beam]
            e = embs[owners]  # (H, D)
            he = np.stack([rows[b].seen[t][1] for b, t in zip(owners, hyps, strict=True)])
            new = self.rewrite(e, hyps, he, options.generation)
            for _ in range(cfg.samples):
                sampling = options.generation.replace(do_sample=True, temperature=cfg.temperature,
                                                      top_p=0.95)  # fmt: skip
                new += self.rewrite(e, hyps, he, sampling, rng)
            owners = owners * (1 + cfg.samples)
            changed = self._add_flat(rows, embs, owners, new, cfg.beam)
            active = [b for b in active if b in changed]
        return rows

    def _start(self, embs: np.ndarray, options, cfg: CorrectionConfig) -> list[list[str]]:
        """Search mode's candidate lists (B texts each) with ``cfg.prototypes`` prototypes;
        the plain decode alone without a bank or an editing decoder."""
        dec = self.decoding
        if dec.bank is None or not dec.edits:
            return [dec.tokens_to_texts(embs, options.generation, seed=options.seed)]
        return dec.search_candidates(embs, options, cfg.prototypes)

    def _add(self, rows: list[_Row], embs: np.ndarray, cands: list[list[str]], beam: int) -> None:
        owners = [b for _ in cands for b in range(len(rows))]
        self._add_flat(rows, embs, owners, [t for c in cands for t in c], beam)

    def _add_flat(self, rows: list[_Row], embs: np.ndarray, owners: list[int], texts: list[str],
                  beam: int) -> set[int]:  # fmt: skip
        """Score the texts not yet seen by their rows, update the beams; the rows whose beam
        changed."""
        fresh, seen_now = [], set()
        for b, t in zip(owners, texts, strict=True):
            if t.strip() and t not in rows[b].seen and (b, t) not in seen_now:
                fresh.append((b, t))
                seen_now.add((b, t))
        if fresh:
            cemb = unit_rows(self.decoding.teacher.encode([t for _, t in fresh], cache=False))
            for (b, t), v in zip(fresh, cemb, strict=True):
                rows[b].seen[t] = (float(v @ embs[b]), v)
        changed = set()
        for b in sorted(set(owners)):
            row = rows[b]
            if not row.seen:  # every candidate empty: keep an empty answer
                row.seen[""] = (0.0, np.zeros(embs.shape[1], np.float32))
            # stable order: earlier-seen texts win ties (dicts keep insertion order)
            ranked = sorted(row.seen, key=lambda t: -row.seen[t][0])[:beam]
            if ranked != row.beam:
                changed.add(b)
            row.beam = ranked
        return changed


__all__ = ["CorrectionConfig", "Corrector", "CorrectorStepper"]
