"""Decoding strategies: embeddings -> text, over a backend, a teacher and a phrase bank.

One :class:`Decoding` serves the predictor, evaluation, calibration and export parity:

- :meth:`Decoding.core`: question embeddings -> the core's answer embeddings (checked,
  normalised as the decoders were trained);
- :meth:`Decoding.generate`: the decoder, editing prototypes when it can, with optional
  reranking (the plain decode and ``rerank.candidates - 1`` seeded samples, best by the
  teacher's cosine to the target);
- :meth:`Decoding.texts`: the modes of :data:`~celltext.inference.options.DECODE_MODES`
  (plain, retrieve-and-edit, search with iterative correction as in vec2text, Morris et al.
  2023, "Text Embeddings Reveal (Almost) As Much As Text", and ``correct``: search, then a
  corrector with feedback, :mod:`celltext.inference.correction`).

Every method takes its :class:`~celltext.inference.options.DecodingConfig`; nothing here is
changed by a call. Shapes: B rows, D teacher dimension, C candidate lists, k prototypes,
P prototype tokens.
"""

from __future__ import annotations

import numpy as np

from celltext.generation import GenerationOptions
from celltext.index import RetrievalIndex, unit_rows
from celltext.inference.backend import Backend, Teacher
from celltext.inference.options import DECODE_MODES, DecodingConfig


class Decoding:
    """Decoding strategies of one model (``backend``), scored by ``teacher``; ``bank`` gives
    the prototypes of ``edit`` and ``search`` (None: plain decoding only)."""

    def __init__(self, backend: Backend, teacher: Teacher, bank: RetrievalIndex | None = None):
        self.backend = backend
        self.teacher = teacher
        self.bank = bank

    @property
    def edits(self) -> bool:
        """Whether the decoder edits a prototype (retrieve and edit)."""
        return self.backend.capabilities.edits

    # -- core -----------------------------------------------------------------------------
    def core(self, q_embs: np.ndarray, options: DecodingConfig) -> np.ndarray:
        """The core's predicted answer embeddings (B, D) for question embeddings (B, D),
        checked (shape, finite) and L2-normalised when ``normalize_core_output``."""
        pred = np.asarray(self.backend.core(q_embs), dtype=np.float32)  # (B, D)
        if pred.shape != q_embs.shape:
            raise ValueError(f"core returned shape {pred.shape}, expected {q_embs.shape}")
        if not np.isfinite(pred).all():
            raise ValueError("core returned NaN or infinity")
        return unit_rows(pred) if options.normalize_core_output else pred

    # -- modes ----------------------------------------------------------------------------
    def texts(
        self, embs: np.ndarray, options: DecodingConfig, mode: str | None = None
    ) -> list[str]:
        """Texts for (B, D) embeddings in ``mode`` (default ``options.mode``); ``edit`` and
        ``search`` decode plainly when there is no bank or the decoder cannot edit."""
        mode = mode or options.mode
        if mode not in DECODE_MODES:
            raise ValueError(f"mode must be one of {', '.join(DECODE_MODES)}, got {mode!r}")
        if mode == "correct":
            cfg = options.correction
            return self.corrector(cfg.weights).texts(embs, options, cfg)
        if mode == "generative" or self.bank is None or not self.edits:
            return self.generate(embs, options)
        if mode == "edit":
            return self.generate(embs, options, [m.text for m in self.bank.by_answer(embs)])
        return self.search(embs, options)

    def search(self, embs: np.ndarray, options: DecodingConfig) -> list[str]:
        """Best by teacher cosine of the plain decode, the ``search.prototypes`` nearest bank
        texts and their edits (the first edit first: ties keep it); then
        ``search.correction_steps`` rounds re-editing the best, kept where closer."""
        best, best_score = self.closest(
            self.search_candidates(embs, options, options.search.prototypes), embs
        )
        for _ in range(options.search.correction_steps):
            again = self.generate(embs, options, best)
            if not (changed := [i for i in range(len(embs)) if again[i] != best[i]]):
                break  # a copy scores the same; no change at all: a fixed point
            new = self.scores([[again[i] for i in changed]], embs[changed])[0]
            for i, sc in zip(changed, new, strict=True):
                if sc > best_score[i]:
                    best[i], best_score[i] = again[i], sc
        return best

    def search_candidates(
        self, embs: np.ndarray, options: DecodingConfig, k: int
    ) -> list[list[str]]:
        """Search mode's candidate lists, each of B texts: the edit of the nearest bank text,
        the plain decode, the ``k`` nearest bank texts and the edits of the other ``k - 1``
        (the first edit first, so ties keep it)."""
        hits = self.bank.search(embs, k=k, side="answer")  # (B, k)
        protos = [[h[min(j, len(h) - 1)].text for h in hits] for j in range(k)]  # k x (B,)
        edits = [self.generate(embs, options, p) for p in protos]
        plain = self.tokens_to_texts(embs, options.generation, seed=options.seed)
        return [edits[0], plain, *protos, *edits[1:]]

    def corrector(self, weights: str = ""):
        """The :class:`~celltext.inference.correction.Corrector` of the corrector saved in
        ``weights`` (default ``$CELLTEXT_CORRECTOR``), loaded once (it runs in PyTorch)."""
        import os

        path = weights or os.environ.get("CELLTEXT_CORRECTOR", "")
        if not path:
            raise ValueError(
                "decode mode 'correct' needs a trained corrector: set decoding.correction.weights "
                "(--corrector) or $CELLTEXT_CORRECTOR"
            )
        cache = self.__dict__.setdefault("_correctors", {})
        if path not in cache:
            from celltext.inference.correction import Corrector
            from celltext.models.decoders.corrector import RETCorrector

            cache[path] = Corrector(self, RETCorrector.load(path), self.backend.speculative_rows)
        return cache[path]

    # -- generation -----------------------------------------------------------------------
    def generate(
        self, embs: np.ndarray, options: DecodingConfig, protos: list[str] | None = None
    ) -> list[str]:
        """Decode (B, D) embeddings, editing ``protos`` when the decoder can; with
        ``rerank.candidates`` > 1, the best of the plain decode and ``candidates - 1``
        samples (from a generator seeded by ``options.seed``) by teacher cosine."""
        protos = protos if self.edits else None
        texts = self.tokens_to_texts(embs, options.generation, protos, options.seed)
        if options.rerank.candidates <= 1:
            return texts
        n = options.rerank.candidates - 1
        reps = np.repeat(embs, n, axis=0)  # (B * n, D)
        rep_protos = None if protos is None else [p for p in protos for _ in range(n)]
        samples = self.tokens_to_texts(reps, options.sampling(), rep_protos, options.seed)
        return self.closest([texts, *(samples[j::n] for j in range(n))], embs)[0]

    def tokens_to_texts(
        self,
        embs: np.ndarray,
        generation: GenerationOptions,
        protos: list[str] | None = None,
        seed: int = 0,
    ) -> list[str]:
        """One run of the decoding loop with ``generation`` options (a
        :class:`~celltext.generation.GenerationOptions`), editing ``protos`` when given;
        sampling draws from a generator seeded with ``seed`` (the same rows, the same
        draws)."""
        rng = np.random.default_rng(seed) if generation.do_sample else None
        proto_ids = None if protos is None else self.proto_ids(protos)
        ids = self.backend.generate(embs, proto_ids, generation, rng)
        return [self.backend.tokenizer.decode(seq).strip() for seq in ids]

    def proto_ids(self, protos: list[str], limit: int | None = None) -> np.ndarray:
        """Prototype texts -> token ids (B, P) padded to ``limit`` (default: the decoder's
        ``max_proto_tokens``).

        The width is fixed, not the batch's longest prototype: training pads each batch's
        prototypes with ``<pad>`` before the separator, so every row is padded here too, and
        a row's prefix (hence its answer) never depends on what it is batched with.
        """
        limit = limit or self.backend.capabilities.max_proto_tokens
        tok = self.backend.tokenizer
        out = np.full((len(protos), limit), int(tok.pad_id), dtype=np.int64)
        for i, p in enumerate(protos):
            row = tok.encode(p)[:limit]
            out[i, : len(row)] = row
        return out

    # -- ranking by the teacher -----------------------------------------------------------
    def closest(self, cands: list[list[str]], embs: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Per row, the candidate (of C lists of B texts) whose teacher embedding is closest
        to ``embs`` (B, D), and its cosine (B,); ties keep the earlier list."""
        score = self.scores(cands, embs)  # (C, B)
        best, cols = np.argmax(score, axis=0), np.arange(len(embs))  # (B,)
        return [cands[best[i]][i] for i in cols], score[best, cols]

    def scores(self, cands: list[list[str]], embs: np.ndarray) -> np.ndarray:
        """Teacher cosine (C, B) of each of C lists of B candidate texts to ``embs`` (B, D)."""
        flat = [t for cand in cands for t in cand]
        cemb = unit_rows(self.teacher.encode(flat, cache=False))  # (C * B, D)
        target = np.tile(unit_rows(embs), (len(cands), 1))  # (C * B, D)
        return np.sum(cemb * target, axis=1).reshape(len(cands), len(embs))


__all__ = ["Decoding"]
