"""The production predictor: teacher -> core -> decoder -> quality check -> fallback.

Shapes: B questions, D teacher dimension.

::

    questions --teacher--> q (B, D) --core--> e (B, D) --decoder--> answers
    answers --teacher--> a (B, D);  quality = cos(a, e) and coherence -> confidence
    confidence < threshold, an empty answer, or ANY stage raising -> the phrase bank

This module is the pipeline only: which stage runs, what happens when one fails, which
candidate is served and the :class:`Answer` it becomes. How text is decoded is
:mod:`celltext.inference.decoding`; the model stages come from a
:class:`~celltext.inference.backend.Backend` (torch or onnxruntime); the options are a
:class:`~celltext.inference.options.PredictorConfig`, passed per call (``answer(qs,
config)``) or fixed in a copy (:meth:`Predictor.with_config`), never changed in place.

Every :class:`Answer` says whether the fallback was used and why (``fallback_reason``:
``low_confidence``, ``empty_answer``, ``teacher_error``, ``core_error``, ``decoder_error``,
``quality_error``), its confidence, its latency and the model that produced it. With the
fallback disabled the generated answer is returned whatever its quality and a failing
stage raises :class:`StageError` (what ``celltext eval --no-fallback`` needs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from celltext.index import Match, RetrievalIndex
from celltext.inference.backend import Backend, PredictorParts
from celltext.inference.candidates import Candidates, candidate_matrices, retrieve
from celltext.inference.decoding import Decoding
from celltext.inference.options import PredictorConfig
from celltext.inference.quality import LockedTeacher, Quality, QualityAssessor
from celltext.inference.ranking import Ranker
from celltext.inference.records import (
    RETRIEVAL,
    Answer,
    Decoded,
    DimensionError,
    ModelInfo,
    StageError,
)
from celltext.inference.selector import ABSTAIN_TEXT, FEATURES, AnswerSelector

log = logging.getLogger(__name__)

LAST_RESORT_ANSWER = "Sorry, I cannot answer that right now."  # when even the bank fails
T = TypeVar("T")


class Predictor:
    """Answers questions with a model, checking quality, falling back on failure.

    ``backend`` runs the model's stages (``None``: the retrieval-only mode, answers from
    ``bank``); ``config`` is the default of every call.
    """

    def __init__(
        self,
        teacher,
        backend: Backend | None = None,
        bank: RetrievalIndex | None = None,
        config: PredictorConfig | None = None,
        info: ModelInfo | None = None,
        selector: AnswerSelector | None = None,
        ranker: Ranker | None = None,
    ):
        self.teacher = teacher if isinstance(teacher, LockedTeacher) else LockedTeacher(teacher)
        self.backend = backend
        self.bank = bank
        self.config = config or PredictorConfig()
        self.info = info or ModelInfo(RETRIEVAL if backend is None else "model", "local")
        self.selector = selector or AnswerSelector()
        self.ranker = ranker  # used with a bank that knows its pairs' question types
        self.decoding = None if backend is None else Decoding(backend, self.teacher, bank)
        if backend is None and bank is None:
            raise ValueError("retrieval mode needs a phrase bank")
        if bank is not None and bank.dim != self.teacher.dim:
            raise ValueError(f"phrase bank has dim {bank.dim}, teacher {self.teacher.dim}")
        if backend is not None and backend.dim != self.teacher.dim:
            raise ValueError(
                f"model expects dim {backend.dim} but teacher {self.teacher.id} gives "
                f"{self.teacher.dim}"
            )

    @classmethod
    def from_parts(cls, parts: PredictorParts, config: PredictorConfig | None = None) -> Predictor:
        """The predictor of a loader's parts; ``config`` (default: the parts' own, else
        the defaults)."""
        return cls(
            parts.teacher, parts.backend, parts.bank, config or parts.config, parts.info,
            parts.selector, parts.ranker,
        )  # fmt: skip

    def with_config(self, config: PredictorConfig | None = None, **changes: Any) -> Predictor:
        """A predictor sharing this one's teacher, backend, bank and selector, with
        ``config`` (default: this one's) and ``changes`` to it (nested keys as mappings:
        ``with_config(fallback={"enabled": False})``); this predictor is left as it is."""
        cfg = (config or self.config).replace(**changes)
        return Predictor(
            self.teacher, self.backend, self.bank, cfg, self.info, self.selector, self.ranker
        )

    @property
    def dim(self) -> int:
        """Embedding dimension the model expects."""
        return int(self.teacher.dim)

    @property
    def retrieval_only(self) -> bool:
        """True in ``--model retrieval`` mode."""
        return self.backend is None

    @property
    def edits(self) -> bool:
        """Whether the decoder can edit a prototype (retrieve and edit)."""
        return self.decoding is not None and self.decoding.edits

    # -- answers --------------------------------------------------------------------------
    def answer(
        self, questions: Sequence[str], config: PredictorConfig | None = None
    ) -> list[Answer]:
        """Answer each question (one batch through every stage)."""
        return self.answer_with_core(questions, config)[0]

    def answer_with_core(
        self, questions: Sequence[str], config: PredictorConfig | None = None
    ) -> tuple[list[Answer], np.ndarray | None]:
        """The answers and the core's predicted embeddings (B, D) they came from (None when
        the core did not run): what evaluation scores, without running the model twice."""
        start = time.perf_counter()
        questions = [str(q) for q in questions]
        if not questions:
            return [], None
        cfg = config or self.config
        rows, preds = self._answer(self.read(questions, cfg), cfg)
        ms = (time.perf_counter() - start) * 1000.0
        for row, question in zip(rows, questions, strict=True):
            row.latency_ms, row.question = ms, question
        return rows, preds

    def timeout_answers(self, questions: Sequence[str], timeout_s: float) -> list[Answer] | None:
        """Phrase-bank answers found without any model call (for a request past its timeout);
        None when the fallback is disabled or there is no bank."""
        if not self.config.fallback.enabled or self.bank is None:
            return None
        reason = f"timeout: no answer within {timeout_s:g} s"
        return self._fallback(list(questions), None, None, [reason] * len(questions), self.config)

    # -- the stages, public for evaluation, calibration and parity ------------------------
    def read(self, questions: Sequence[str], config: PredictorConfig | None = None) -> list[str]:
        """The questions as the model reads them: typing errors corrected against the phrase
        bank's words (``bank.spelling``; unchanged without a bank)."""
        cfg = config or self.config
        if self.bank is None or not cfg.bank.spelling:
            return list(questions)
        speller = self.bank.speller
        return [speller.correct(q) for q in questions]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Teacher embeddings (N, D) float32, L2-normalised (no disk cache)."""
        return np.asarray(self.teacher.encode(list(texts), cache=False), dtype=np.float32)

    def core(self, q_embs: np.ndarray, config: PredictorConfig | None = None) -> np.ndarray:
        """The core's predicted answer embeddings (B, D) for question embeddings (B, D)."""
        self._require_model()
        cfg = config or self.config
        return self.decoding.core(np.asarray(q_embs, dtype=np.float32), cfg.decoding)

    def candidates(
        self,
        questions: list[str],
        q_embs: np.ndarray,
        preds: np.ndarray,
        config: PredictorConfig | None = None,
        exclude: np.ndarray | None = None,
    ) -> Candidates:
        """The production candidates and their selector features (serving and calibration
        alike). ``exclude`` (B, N) hides bank rows per question (calibration imitates an
        unseen subject). A failing retrieval raises :class:`StageError`; a failing model
        stage leaves only the bank's candidates, with ``failure`` saying why."""
        self._require_model()
        cfg = config or self.config
        ranker = self.ranker if self.bank.qtypes is not None else None
        found = _run("retrieval", retrieve, self.bank, questions, q_embs, preds, exclude, ranker)
        kind = texts = embs = failure = None
        try:
            protos = [self.bank.answers[r] for r in found.retrieved]
            texts = _run("decoder", self.decoding.generate, preds, cfg.decoding, protos)
            embs = _run("quality", self._embed_edits, texts, protos, found.retrieved)  # (B, D)
            kind = "edited" if self.edits else "generated"
        except StageError as exc:
            log.warning("model answer failed, choosing among retrieved: %s", exc)
            failure, texts = exc.reason, None
        cands, mats = candidate_matrices(self.bank, found, q_embs, preds, kind, texts, embs)
        return Candidates(found, cands, mats, kind, texts, embs, failure)

    def activity(self, question: str) -> dict[str, Any] | None:
        """Lattice activity of the core for ``question``, or None if the core has no lattice."""
        if self.retrieval_only or not self.backend.capabilities.activity:
            return None
        return self.backend.activity(self.embed([question]))  # (1, D) in

    # -- decoding raw embeddings ----------------------------------------------------------
    def check_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Validate raw embeddings: (D,) or (N, D) with the model's D, real, finite, not
        zero; returns them (N, D) L2-normalised, so a vector and any positive multiple of it
        decode to the same text (the norm is taken in float64: no overflow)."""
        if np.iscomplexobj(embeddings):
            raise DimensionError("embeddings must be real numbers, not complex")
        arr = np.asarray(embeddings, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]  # (1, D)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise DimensionError(
                f"expected embeddings of shape (N, {self.dim}) for teacher {self.teacher.id} "
                f"(dimension {self.dim}), got shape {tuple(np.shape(embeddings))}"
            )
        if not np.isfinite(arr).all():
            raise DimensionError("embeddings contain NaN or infinity")
        norms = np.linalg.norm(arr, axis=1, keepdims=True)  # (N, 1)
        if (norms == 0).any():
            raise DimensionError("an embedding is all zeros: it has no direction to decode")
        return (arr / norms).astype(np.float32)

    def decode(
        self, embeddings: np.ndarray, mode: str | None = None, config: PredictorConfig | None = None
    ) -> list[Decoded]:
        """Decode raw embeddings (N, D) to text (no core), each with its preservation (the
        teacher cosine of the text to the embedding). ``mode``: see :meth:`decode_texts`."""
        embs = self.check_embeddings(embeddings)  # (N, D)
        if not len(embs):
            return []
        if self.retrieval_only:
            return [Decoded(m.text, m.score) for m in self.bank.by_answer(embs)]
        texts = self.decoding.texts(embs, (config or self.config).decoding, mode)  # checked once
        quals = QualityAssessor(self.teacher).assess(None, texts, embs)
        return [Decoded(t, q.similarity) for t, q in zip(texts, quals, strict=True)]

    def decode_texts(
        self, embeddings: np.ndarray, mode: str | None = None, config: PredictorConfig | None = None
    ) -> list[str]:
        """Texts for raw embeddings (N, D), without the quality check; ``mode`` (default
        ``config.decoding.mode``): one of :data:`~celltext.inference.options.DECODE_MODES`."""
        embs = self.check_embeddings(embeddings)  # (N, D)
        if not len(embs):
            return []
        if self.retrieval_only:
            return [m.text for m in self.bank.by_answer(embs)]
        return self.decoding.texts(embs, (config or self.config).decoding, mode)

    # -- pipeline -------------------------------------------------------------------------
    def _answer(self, questions: list[str], cfg: PredictorConfig):
        q_embs = preds = None
        try:
            q_embs = _run("teacher", self.embed, questions)  # (B, D)
            if self.retrieval_only:
                return self._retrieve(questions, q_embs), None
            preds = _run("core", self.core, q_embs, cfg)  # (B, D)
            if not (cfg.fallback.enabled and self.bank is not None and self.selector.fitted):
                return self._generated(questions, q_embs, preds, cfg), preds
            return self._choose(questions, q_embs, preds, cfg), preds
        except StageError as exc:
            if not cfg.fallback.enabled:
                raise
            log.warning("predictor stage failed, falling back: %s", exc, exc_info=exc.cause)
            reasons = [exc.reason] * len(questions)
            return self._fallback(questions, q_embs, preds, reasons, cfg), preds

    def _generated(self, questions, q_embs, preds, cfg: PredictorConfig) -> list[Answer]:
        """The model's own answers, replaced by the phrase bank's below the confidence
        threshold (models without a fitted selector; fallback disabled: generation only,
        whatever the quality)."""
        texts = _run("decoder", self.decoding.generate, preds, cfg.decoding)
        assessor = QualityAssessor(
            self.teacher, cfg.quality.similarity_weight, cfg.quality.use_coherence
        )
        quals = _run("quality", assessor.assess, questions, texts, preds, q_embs)
        rows = [
            self._generated_row(q, t, qual, cfg)
            for q, t, qual in zip(questions, texts, quals, strict=True)
        ]
        failing = [i for i, r in enumerate(rows) if r.fallback_reason is not None]
        if not cfg.fallback.enabled:
            for r in rows:
                r.fallback_reason = None
        elif failing:
            subset = self._fallback(
                [questions[i] for i in failing], q_embs[failing], preds[failing],
                [rows[i].fallback_reason for i in failing], cfg,
            )  # fmt: skip
            for i, fb in zip(failing, subset, strict=True):
                fb.generated, fb.model_confidence = rows[i].generated, rows[i].model_confidence
                rows[i] = fb
        return rows

    def _generated_row(self, question: str, text: str, qual: Quality, cfg) -> Answer:
        reason = None
        if not text.strip():
            reason = "empty_answer"
        elif qual.confidence < cfg.quality.threshold:
            reason = f"low_confidence: {qual.confidence:.3f} < {cfg.quality.threshold:.3f}"
        return Answer(
            question=question, answer=text, confidence=qual.confidence, fallback=False,
            fallback_reason=reason, latency_ms=0.0, model=self.info.label,
            similarity=qual.similarity, coherence=qual.coherence, generated=text,
            model_confidence=qual.confidence,
        )  # fmt: skip

    def _choose(self, questions, q_embs, preds, cfg: PredictorConfig) -> list[Answer]:
        """Production: the retrieved, nearest and edited candidates, the one the selector
        scores highest, its calibrated confidence, abstention below the threshold."""
        try:
            cands = self.candidates(questions, q_embs, preds, cfg)
        except StageError as exc:
            log.warning("predictor stage failed, falling back: %s", exc, exc_info=exc.cause)
            reasons = [exc.reason] * len(questions)
            return self._fallback(questions, q_embs, preds, reasons, cfg)
        kinds, conf = self.selector.choose(cands.matrices)
        own = None
        if cands.model_kind is not None:
            p = self.selector.kind_probability(cands.model_kind, cands.matrices[cands.model_kind])
            own = self.selector.calibrated(p)
        sim_col = FEATURES.index("cand_vs_core")
        rows = []
        for i, q in enumerate(questions):
            k, c = kinds[i], float(conf[i])
            text = cands.texts[k][i]
            row = cands.found.nearest[i] if k == "nearest" else cands.found.retrieved[i]
            src = {} if k == "generated" else self._known(int(row))
            abstain = cfg.fallback.abstain and c < self.selector.abstain_below
            prov = "abstained" if abstain else ("retrieved" if k in ("retrieved", "nearest") else k)
            rows.append(Answer(
                question=q, answer=ABSTAIN_TEXT if abstain else text, confidence=c,
                fallback=prov == "retrieved", fallback_reason=cands.failure, latency_ms=0.0,
                model=self.info.label, similarity=float(cands.matrices[k][i, sim_col]),
                generated=None if cands.model_texts is None else cands.model_texts[i],
                model_confidence=None if own is None else float(own[i]),
                provenance=prov, abstained=abstain, best_guess=text,
                **src,
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

    def _retrieve(self, questions: list[str], q_embs: np.ndarray) -> list[Answer]:
        matches = _run("retrieval", self.bank.by_question, q_embs)
        return [
            Answer(
                question=q, answer=m.text, confidence=_clip01(m.score), fallback=False,
                fallback_reason=None, latency_ms=0.0, model=self.info.label,
                similarity=m.score, provenance="retrieved", best_guess=m.text,
                **self._known(m.index),
            )
            for q, m in zip(questions, matches, strict=True)
        ]  # fmt: skip

    def _fallback(self, questions, q_embs, preds, reasons, cfg) -> list[Answer]:
        matches = self._search_bank(questions, q_embs, preds, cfg)
        label = f"{self.info.label}+fallback"
        return [
            Answer(
                question=q, answer=m.text, confidence=_clip01(m.score), fallback=True,
                fallback_reason=r, latency_ms=0.0, model=label, provenance="retrieved",
                best_guess=m.text, **self._known(m.index),
            )
            for q, m, r in zip(questions, matches, reasons, strict=True)
        ]  # fmt: skip

    def _known(self, row: int) -> dict[str, str]:
        """The :class:`Answer` fields naming bank row ``row``'s known question and its
        answer (none for no row, -1: the last-resort answer)."""
        if self.bank is None or row < 0:
            return {}
        return {"source_question": self.bank.questions[row], "source_fact": self.bank.answers[row]}

    def _search_bank(self, questions, q_embs, preds, cfg: PredictorConfig) -> list[Match]:
        """Phrase-bank answers; lexical when the teacher failed; a fixed text if all fails."""
        if self.bank is not None:
            try:
                if preds is not None and cfg.fallback.search == "answer":
                    return self.bank.by_answer(preds)
                if q_embs is not None:
                    return self.bank.by_question(q_embs)
                return self.bank.lexical(questions)
            except Exception:  # noqa: BLE001 -- the fallback itself must never fail a request
                log.exception("phrase bank search failed; using the last-resort answer")
        return [Match(LAST_RESORT_ANSWER, 0.0, -1) for _ in questions]

    def _require_model(self) -> None:
        if self.decoding is None:
            raise ValueError("the retrieval-only predictor has no core or decoder")

    def __repr__(self) -> str:
        return f"Predictor(model={self.info.label!r}, fallback={self.config.fallback.enabled})"


def _run(stage: str, fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn(*args)``; any exception becomes a :class:`StageError` naming ``stage``."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 -- every stage failure is handled the same way
        raise StageError(stage, exc) from exc


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


__all__ = ["LAST_RESORT_ANSWER", "Predictor"]
