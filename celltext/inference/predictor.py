"""The production predictor: teacher -> core -> decoder -> quality check -> fallback.

Shapes: B questions, D teacher dimension.

::

    questions --teacher--> q (B, D) --core--> e (B, D) --decoder--> answers
    answers --teacher--> a (B, D);  quality = cos(a, e) and coherence -> confidence
    confidence < threshold, an empty answer, or ANY stage raising -> the phrase bank

Every :class:`Answer` says whether the fallback was used and why (``fallback_reason``:
``low_confidence``, ``empty_answer``, ``teacher_error``, ``core_error``, ``decoder_error``,
``quality_error``), its confidence, its latency and the model that produced it. With
``fallback=False`` the generated answer is returned whatever its quality and a failing
stage raises :class:`StageError` (what ``celltext eval --no-fallback`` needs).

The model stages (core, decoder step) come from a backend, torch or onnxruntime; everything
else is here, once. The CLI, the HTTP service, evaluation and the benchmarks only ever call
this object; they never touch torch or onnxruntime themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from celltext.generation import GenerationOptions
from celltext.index import Match, RetrievalIndex, unit_rows
from celltext.inference.candidates import candidate_matrices, retrieve
from celltext.inference.quality import LockedTeacher, Quality, QualityAssessor
from celltext.inference.records import (
    RETRIEVAL,
    Answer,
    Decoded,
    DimensionError,
    ModelInfo,
    PredictorConfig,
    StageError,
    model_info_from_checkpoint,
)
from celltext.inference.selector import ABSTAIN_TEXT, FEATURES, AnswerSelector

log = logging.getLogger(__name__)

LAST_RESORT_ANSWER = "Sorry, I cannot answer that right now."  # when even the bank fails


class Predictor:
    """Answers questions with a checkpointed model, checking quality, falling back on failure.

    ``backend`` runs the model's stages: :class:`~celltext.inference.torch_backend.TorchBackend`
    or :class:`~celltext.inference.onnx_backend.OrtBackend` (``None``: the retrieval-only
    mode). Everything else (quality check, selector, fallback, reranking) is this class.
    """

    def __init__(
        self,
        teacher,
        backend=None,
        bank: RetrievalIndex | None = None,
        config: PredictorConfig | None = None,
        info: ModelInfo | None = None,
        selector: AnswerSelector | None = None,
    ):
        self.selector = selector or AnswerSelector()
        self.teacher = teacher if isinstance(teacher, LockedTeacher) else LockedTeacher(teacher)
        teacher = self.teacher
        self.backend = backend
        self.bank = bank
        self.config = config or PredictorConfig()
        self.info = info or ModelInfo(RETRIEVAL if backend is None else "model", "local")
        self.assessor = QualityAssessor(
            teacher, self.config.similarity_weight, self.config.use_coherence
        )
        if backend is None and bank is None:
            raise ValueError("retrieval mode needs a phrase bank")
        if bank is not None and bank.dim != teacher.dim:
            raise ValueError(f"phrase bank has dim {bank.dim}, teacher {teacher.dim}")
        if backend is not None and backend.dim != teacher.dim:
            raise ValueError(
                f"model expects dim {backend.dim} but teacher {teacher.id} gives {teacher.dim}"
            )

    # -- construction ---------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Embedding dimension the model expects."""
        return int(self.teacher.dim)

    @property
    def retrieval_only(self) -> bool:
        """True in ``--model retrieval`` mode."""
        return self.backend is None

    # -- public API -----------------------------------------------------------------------
    def answer(self, questions: Sequence[str]) -> list[Answer]:
        """Answer each question (one batch through every stage)."""
        return self.answer_with_core(questions)[0]

    def answer_with_core(self, questions: Sequence[str]) -> tuple[list[Answer], np.ndarray | None]:
        """The answers and the core's predicted embeddings (B, D) they came from (None when
        the core did not run): what evaluation scores, without running the model twice."""
        start = time.perf_counter()
        questions = [str(q) for q in questions]
        if not questions:
            return [], None
        rows, preds = self._answer(questions)
        ms = (time.perf_counter() - start) * 1000.0
        for row in rows:
            row.latency_ms = ms
        return rows, preds

    def timeout_answers(self, questions: Sequence[str], timeout_s: float) -> list[Answer] | None:
        """Phrase-bank answers found without any model call (for a request past its timeout);
        None when the fallback is disabled or there is no bank."""
        if not self.config.fallback or self.bank is None:
            return None
        reason = f"timeout: no answer within {timeout_s:g} s"
        return self._fallback(list(questions), None, None, [reason] * len(questions))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Teacher embeddings (N, D) float32, L2-normalised (no disk cache)."""
        return np.asarray(self.teacher.encode(list(texts), cache=False), dtype=np.float32)

    def check_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Validate raw embeddings: (D,) or (N, D) with the model's D, finite; returns (N, D)."""
        arr = np.asarray(embeddings, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]  # (1, D)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise DimensionError(
                f"expected embeddings of shape (N, {self.dim}) for teacher {self.teacher.id} "
                f"(dimension {self.dim}), got shape {tuple(np.shape(embeddings))}"
            )
        if not np.isfinite(arr).all():
            raise DimensionError("embeddings contain NaN or infinity")
        return arr

    def decode(self, embeddings: np.ndarray, mode: str | None = None) -> list[Decoded]:
        """Decode raw embeddings (N, D) to text (no core), each with its preservation (the
        teacher cosine of the text to the embedding); checks D against the model. ``mode``:
        see :meth:`decode_texts`."""
        embs = self.check_embeddings(embeddings)  # (N, D)
        if self.retrieval_only:
            return [Decoded(m.text, m.score) for m in self.bank.by_answer(embs)]
        texts = self.decode_texts(embs, mode)
        quals = self.assessor.assess(None, texts, embs)
        return [Decoded(t, q.similarity) for t, q in zip(texts, quals, strict=True)]

    def decode_texts(self, embeddings: np.ndarray, mode: str | None = None) -> list[str]:
        """Texts for raw embeddings (N, D), without the quality check.

        ``mode`` (default ``config.decode_mode``): ``generative`` (the decoder alone),
        ``edit`` (retrieve and edit: the nearest phrase-bank answer is the prototype) or
        ``search`` (best by teacher cosine of the plain decode, the ``search_prototypes``
        nearest phrase-bank texts and their edits, and ``rerank - 1`` edited samples)."""
        embs = self.check_embeddings(embeddings)  # (N, D)
        if self.retrieval_only:
            return [m.text for m in self.bank.by_answer(embs)]
        mode = mode or self.config.decode_mode
        if mode not in ("generative", "edit", "search"):
            raise ValueError(f"mode must be 'generative', 'edit' or 'search', got {mode!r}")
        if mode == "generative" or self.bank is None or not self.edits:
            texts = self._generate(embs)
        elif mode == "edit":
            texts = self._generate(embs, [m.text for m in self.bank.by_answer(embs)])
        else:
            texts = self._search(embs)
        return texts

    def _search(self, embs: np.ndarray) -> list[str]:
        """Best by teacher cosine of the plain decode, the ``search_prototypes`` nearest
        bank texts and their edits (the first edit first: ties keep it); then
        ``correction_steps`` rounds re-editing the best, kept where closer (vec2text)."""
        k = self.config.search_prototypes
        hits = self.bank.search(embs, k=k, side="answer")  # (B, k)
        protos = [[h[min(j, len(h) - 1)].text for h in hits] for j in range(k)]  # k x (B,)
        edits = [self._generate(embs, p) for p in protos]
        best, best_score = self._pick_closest(
            [edits[0], self._decode(embs), *protos, *edits[1:]], embs
        )
        for _ in range(self.config.correction_steps):
            again = self._generate(embs, best)
            if not (changed := [i for i in range(len(embs)) if again[i] != best[i]]):
                break  # a copy scores the same; no change at all: a fixed point
            new = self._scores([[again[i] for i in changed]], embs[changed])[0]
            for i, sc in zip(changed, new, strict=True):
                if sc > best_score[i]:
                    best[i], best_score[i] = again[i], sc
        return best

    def activity(self, question: str) -> dict[str, Any] | None:
        """Lattice activity of the core for ``question``, or None if the core has no lattice."""
        if self.retrieval_only or not hasattr(self.backend, "activity"):
            return None
        return self.backend.activity(self.embed([question]))  # (1, D) in

    # -- pipeline -------------------------------------------------------------------------
    def _answer(self, questions: list[str]) -> tuple[list[Answer], np.ndarray | None]:
        q_embs = preds = None
        try:
            q_embs = _run("teacher", self.embed, questions)  # (B, D)
            if self.retrieval_only:
                return self._retrieve(questions, q_embs), None
            preds = _run("core", self._core, q_embs)  # (B, D)
            if not (self.config.fallback and self.bank is not None and self.selector.fitted):
                return self._generated(questions, q_embs, preds), preds
        except StageError as exc:
            if not self.config.fallback:
                raise
            log.warning("predictor stage failed, falling back: %s", exc, exc_info=exc.cause)
            return self._fallback(questions, q_embs, preds, [exc.reason] * len(questions)), preds
        return self._choose(questions, q_embs, preds), preds

    def _generated(self, questions, q_embs, preds) -> list[Answer]:
        """The model's own answers, replaced by the phrase bank's below the confidence
        ``threshold`` (models without a fitted selector; ``fallback=False``: generation
        only, whatever the quality)."""
        texts = _run("decoder", self._generate, preds)
        quals = _run("quality", self.assessor.assess, questions, texts, preds, q_embs)
        rows = [
            self._row(q, t, qual, self.info.label)
            for q, t, qual in zip(questions, texts, quals, strict=True)
        ]
        failing = [i for i, r in enumerate(rows) if r.fallback_reason is not None]
        if not self.config.fallback:
            for r in rows:
                r.fallback_reason = None
        elif failing:
            subset = self._fallback(
                [questions[i] for i in failing], q_embs[failing], preds[failing],
                [rows[i].fallback_reason for i in failing],
            )  # fmt: skip
            for i, fb in zip(failing, subset, strict=True):
                fb.generated, fb.model_confidence = rows[i].generated, rows[i].model_confidence
                rows[i] = fb
        return rows

    def _choose(self, questions, q_embs, preds) -> list[Answer]:
        """Production: the retrieved, nearest and edited candidates, the one the selector
        scores highest, its calibrated confidence, abstention below the threshold."""
        found = _run_or_fallback(self, "retrieval", retrieve, questions, q_embs, preds)
        if isinstance(found, list):
            return found
        kind = texts = embs = reason = None
        try:
            protos = [self.bank.answers[r] for r in found.retrieved]
            texts = _run("decoder", self._generate, preds, protos)
            embs = _run("quality", self._embed_edits, texts, protos, found.retrieved)  # (B, D)
            kind = "edited" if self.edits else "generated"
        except StageError as exc:
            log.warning("model answer failed, choosing among retrieved: %s", exc)
            reason, texts = exc.reason, None
        cands, mats = candidate_matrices(self.bank, found, q_embs, preds, kind, texts, embs)
        kinds, conf = self.selector.choose(mats)
        own = None if kind is None else self.selector.calibrated(
            self.selector.kind_probability(kind, mats[kind])
        )  # fmt: skip
        sim_col = FEATURES.index("cand_vs_core")
        rows = []
        for i, q in enumerate(questions):
            k, c = kinds[i], float(conf[i])
            text = cands[k][i]
            abstain = self.config.abstain and c < self.selector.abstain_below
            prov = "abstained" if abstain else ("retrieved" if k in ("retrieved", "nearest") else k)
            rows.append(Answer(
                q, ABSTAIN_TEXT if abstain else text, c, prov == "retrieved", reason, 0.0,
                self.info.label, float(mats[k][i, sim_col]), None,
                None if texts is None else texts[i], None if own is None else float(own[i]),
                prov, abstain, text,
            ))  # fmt: skip
        return rows

    def _embed_edits(self, texts: list[str], protos: list[str], rows) -> np.ndarray:
        """Teacher embeddings (B, D) of edited answers; an edit that copied its prototype
        takes the bank's embedding of that text instead of a teacher call (the same vector
        up to float noise ~1e-7: a seen question's answer costs no second encode)."""
        embs = np.array(self.bank.answer_embs[list(rows)], dtype=np.float32)  # (B, D)
        changed = [i for i, (t, p) in enumerate(zip(texts, protos, strict=True)) if t != p]
        if changed:
            embs[changed] = self.embed([texts[i] for i in changed])
        return embs

    @property
    def edits(self) -> bool:
        """Whether the decoder can edit a prototype (retrieve and edit)."""
        return bool(getattr(self.backend, "edits", False))

    def _row(self, question: str, text: str, qual: Quality, label: str) -> Answer:
        reason = None
        if not text.strip():
            reason = "empty_answer"
        elif qual.confidence < self.config.threshold:
            reason = f"low_confidence: {qual.confidence:.3f} < {self.config.threshold:.3f}"
        return Answer(
            question, text, qual.confidence, False, reason, 0.0, label,
            qual.similarity, qual.coherence, text, qual.confidence,
        )  # fmt: skip

    def _core(self, q_embs: np.ndarray) -> np.ndarray:
        pred = np.asarray(self.backend.core(q_embs), dtype=np.float32)  # (B, D)
        if pred.shape != q_embs.shape:
            raise ValueError(f"core returned shape {pred.shape}, expected {q_embs.shape}")
        if not np.isfinite(pred).all():
            raise ValueError("core returned NaN or infinity")
        return unit_rows(pred) if self.config.normalize_core_output else pred

    def _generate(self, embs: np.ndarray, protos: list[str] | None = None) -> list[str]:
        """Decode (B, D) embeddings (editing ``protos`` when the decoder can); with
        ``rerank`` > 1, the best of the plain decode and ``rerank - 1`` samples by teacher
        cosine to the embedding (as ``celltext eval``)."""
        cfg = self.config
        protos = protos if self.edits else None
        texts = self._decode(embs, protos=protos)
        if cfg.rerank <= 1:
            return texts
        n = cfg.rerank - 1
        reps = np.repeat(embs, n, axis=0)  # (B * n, D)
        rep_protos = None if protos is None else [p for p in protos for _ in range(n)]
        samples = self._decode(
            reps, True, cfg.rerank_temperature, cfg.rerank_top_p, protos=rep_protos
        )
        return self._pick_closest([texts, *(samples[j::n] for j in range(n))], embs)[0]

    def _pick_closest(
        self, cands: list[list[str]], embs: np.ndarray
    ) -> tuple[list[str], np.ndarray]:
        """Per row, the candidate (of C lists of B texts) whose teacher embedding is closest
        to ``embs`` (B, D), and its cosine (B,); ties keep the earlier list."""
        score = self._scores(cands, embs)  # (C, B)
        best, cols = np.argmax(score, axis=0), np.arange(len(embs))  # (B,)
        return [cands[best[i]][i] for i in cols], score[best, cols]

    def _scores(self, cands: list[list[str]], embs: np.ndarray) -> np.ndarray:
        """Teacher cosine (C, B) of each of C lists of B candidate texts to ``embs`` (B, D)."""
        flat = [t for cand in cands for t in cand]
        cemb = unit_rows(self.teacher.encode(flat, cache=False))  # (C * B, D)
        target = np.tile(unit_rows(embs), (len(cands), 1))  # (C * B, D)
        return np.sum(cemb * target, axis=1).reshape(len(cands), len(embs))

    def _decode(
        self,
        embs: np.ndarray,
        sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        protos: list[str] | None = None,
    ) -> list[str]:
        """Token generation with the config's options (``sample``: the reranking draws, from
        a generator seeded by ``config.seed``, so a question always gets the same
        candidates), editing ``protos`` when given."""
        cfg = self.config
        opts = GenerationOptions(
            max_new_tokens=cfg.max_new_tokens,
            num_beams=1 if sample else cfg.num_beams,
            do_sample=sample or cfg.do_sample,
            repetition_penalty=cfg.repetition_penalty,
            no_repeat_ngram_size=cfg.no_repeat_ngram_size,
            temperature=temperature,
            top_p=top_p,
        )
        rng = np.random.default_rng(cfg.seed) if opts.do_sample else None
        proto_ids = None if protos is None else self._proto_ids(protos)
        ids = self.backend.generate(embs, proto_ids, opts, rng)
        return [self.backend.tokenizer.decode(seq).strip() for seq in ids]

    def _proto_ids(self, protos: list[str]) -> np.ndarray:
        """Prototype texts -> token ids (B, P) padded to the decoder's ``max_proto_tokens``.

        The width is fixed, not the batch's longest prototype: training pads each batch's
        prototypes with ``<pad>`` before the separator, so every row is padded here too, and
        a row's prefix (hence its answer) never depends on what it is batched with.
        """
        limit, tok = self.backend.max_proto_tokens, self.backend.tokenizer
        out = np.full((len(protos), limit), int(tok.pad_id), dtype=np.int64)
        for i, p in enumerate(protos):
            row = tok.encode(p)[:limit]
            out[i, : len(row)] = row
        return out

    def _retrieve(self, questions: list[str], q_embs: np.ndarray) -> list[Answer]:
        matches = _run("retrieval", self.bank.by_question, q_embs)
        return [
            Answer(q, m.text, _clip01(m.score), False, None, 0.0, self.info.label, m.score,
                   provenance="retrieved", best_guess=m.text)
            for q, m in zip(questions, matches, strict=True)
        ]  # fmt: skip

    def _fallback(
        self,
        questions: list[str],
        q_embs: np.ndarray | None,
        preds: np.ndarray | None,
        reasons: list[str],
    ) -> list[Answer]:
        matches = self._search_bank(questions, q_embs, preds)
        label = f"{self.info.label}+fallback"
        return [
            Answer(q, m.text, _clip01(m.score), True, r, 0.0, label, provenance="retrieved",
                   best_guess=m.text)
            for q, m, r in zip(questions, matches, reasons, strict=True)
        ]  # fmt: skip

    def _search_bank(self, questions, q_embs, preds) -> list[Match]:
        """Phrase-bank answers; lexical when the teacher failed; a fixed text if all fails."""
        if self.bank is not None:
            try:
                if preds is not None and self.config.fallback_search == "answer":
                    return self.bank.by_answer(preds)
                if q_embs is not None:
                    return self.bank.by_question(q_embs)
                return self.bank.lexical(questions)
            except Exception:  # noqa: BLE001 -- the fallback itself must never fail a request
                log.exception("phrase bank search failed; using the last-resort answer")
        return [Match(LAST_RESORT_ANSWER, 0.0, -1) for _ in questions]

    def __repr__(self) -> str:
        return f"Predictor(model={self.info.label!r}, fallback={self.config.fallback})"


def _run_or_fallback(predictor: Predictor, stage: str, fn, questions, q_embs, preds):
    """``fn(bank, questions, q_embs, preds)``, or the phrase-bank fallback answers when the
    stage raises."""
    try:
        return _run(stage, fn, predictor.bank, questions, q_embs, preds)
    except StageError as exc:
        log.warning("predictor stage failed, falling back: %s", exc, exc_info=exc.cause)
        return predictor._fallback(questions, q_embs, preds, [exc.reason] * len(questions))


def _run(stage: str, fn, *args):
    """Call ``fn(*args)``; any exception becomes a :class:`StageError` naming ``stage``."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 -- every stage failure is handled the same way
        raise StageError(stage, exc) from exc


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


__all__ = [
    "RETRIEVAL", "Answer", "Decoded", "DimensionError", "ModelInfo", "Predictor",
    "PredictorConfig", "StageError", "model_info_from_checkpoint",
]  # fmt: skip
