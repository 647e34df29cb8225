"""Question-answering systems as the evaluator sees them: questions in, predictions out.

Three systems share one interface (``name``, ``teacher``, ``predict(questions, cache)``):

- :class:`RetrievalSystem`: the nearest-neighbour baseline. Its "predicted embedding" is
  the teacher embedding of the retrieved answer, so core cosine is comparable.
- :class:`GenerativeSystem`: teacher -> core -> decoder, no fallback (``--no-fallback``).
  Optional reranking: N candidates (greedy + N-1 seeded samples), keep the one whose
  teacher embedding is closest to the target embedding (the core's prediction).
- :class:`PredictorSystem`: the production path (``celltext.inference.predictor.Predictor``,
  quality check and phrase-bank fallback); core embeddings come from the same checkpoint.

Shapes: ``B`` questions, ``D`` teacher dim, ``N`` rerank candidates.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from celltext.index import RetrievalIndex, unit_rows
from celltext.inference.records import RETRIEVAL
from celltext.metrics import cosine_rows


@dataclass
class Prediction:
    """One answer with what the evaluator needs to score it."""

    answer: str
    core_emb: np.ndarray | None = None  # (D,) predicted answer embedding, model teacher space
    fallback: bool = False
    confidence: float | None = None
    fallback_reason: str | None = None
    abstained: bool = False
    provenance: str | None = None


@dataclass
class DecodeOptions:
    """How the decoder turns an embedding into text."""

    max_new_tokens: int = 48
    num_beams: int = 1  # > 1: beam search (Hugging Face GenerationConfig names)
    do_sample: bool = False
    no_repeat_ngram_size: int = 4  # as the Predictor: no repeated 4-grams
    rerank: int = 0  # candidates per item; 0 or 1 = no reranking
    rerank_temperature: float = 0.8
    rerank_top_p: float = 0.95
    seed: int = 0
    batch_size: int = 64
    normalize_core_output: bool = True


class RetrievalSystem:
    """The honest baseline, what a sceptic would ship: teacher embedding of the question ->
    nearest training question in ``index`` -> its answer. No trainable parameters; every
    learned model is compared with it on the same splits, metrics and machine."""

    batch_invariant = False  # not checked: answering in chunks might move near-ties
    name = RETRIEVAL

    def __init__(self, index: RetrievalIndex, teacher: Any):
        self.index = index
        self.teacher = teacher
        self.tokenizer = None

    @classmethod
    def from_release(cls, release: Any, teacher: Any) -> RetrievalSystem:
        """The baseline over the ``train`` split of ``release`` (a loaded release or a
        version; the index is cached like the predictor's phrase bank)."""
        return cls(RetrievalIndex.for_release(teacher, release, "train"), teacher)

    def info(self) -> dict[str, Any]:
        """Description for reports."""
        return {"kind": "retrieval", "teacher": self.teacher.id, "index_size": len(self.index)}

    def retrieve(
        self, questions: Sequence[str], cache: bool = True
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Answers, cosines (B,) and the retrieved answers' teacher embeddings (B, D)."""
        if not questions:
            return [], np.zeros(0, np.float32), np.zeros((0, self.index.dim), np.float32)
        q = np.asarray(self.teacher.encode(list(questions), cache=cache), dtype=np.float32)
        matches = self.index.by_question(q)  # (B,)
        rows = [m.index for m in matches]
        score = np.array([m.score for m in matches], dtype=np.float32)
        return [m.text for m in matches], score, self.index.answer_embs[rows]

    def predict(self, questions: Sequence[str], cache: bool = True) -> list[Prediction]:
        """Retrieve the nearest training answer for each question."""
        answers, score, embs = self.retrieve(questions, cache=cache)
        return [
            Prediction(answer=a, core_emb=e, confidence=float(s))
            for a, s, e in zip(answers, score, embs, strict=True)
        ]

    def answer_texts(self, questions: Sequence[str], cache: bool = True) -> list[str]:
        """Just the answers (what a latency measurement times)."""
        return self.retrieve(questions, cache=cache)[0]


class GenerativeSystem:
    """Teacher -> core -> decoder, exactly the model's generative path (no fallback)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        teacher: Any,
        name: str = "model",
        options: DecodeOptions | None = None,
        device: str = "cpu",
        meta: dict[str, Any] | None = None,
    ):
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.teacher = teacher
        self.name = name
        self.options = options or DecodeOptions()
        self.device = device
        self.meta = meta or {}

    @classmethod
    def from_checkpoint(
        cls, ckpt: Any, options: DecodeOptions | None = None, device: str = "cpu", name=None
    ):
        """Build from a :class:`celltext.registry.checkpoint.Checkpoint`."""
        from celltext.teacher import load_teacher

        teacher = load_teacher(ckpt.model.teacher_id)
        keys = ("registered_name", "registered_version", "weights_sha256", "config_hash")
        meta = {"path": str(ckpt.path), **{k: ckpt.metadata[k] for k in keys if k in ckpt.metadata}}
        return cls(
            ckpt.model, ckpt.tokenizer, teacher, name or str(ckpt.path), options, device, meta
        )

    @property
    def batch_invariant(self) -> bool:
        """Whether answering in chunks of ``options.batch_size`` gives the answers of one
        call (the decoder runs in those batches anyway; reranking seeds each batch by its
        offset in the call, so it does not)."""
        return self.options.rerank <= 1

    def with_options(self, **changes: Any) -> GenerativeSystem:
        """A shallow copy with some decode options replaced (shares the model)."""
        other = copy.copy(self)
        other.options = DecodeOptions(**{**self.options.__dict__, **changes})
        return other

    def info(self) -> dict[str, Any]:
        """Architecture names and parameter counts."""
        from celltext.models.zoo import count_parameters

        m = self.model
        return {
            "kind": "generative",
            "core": getattr(m, "core_name", type(m.core).__name__),
            "decoder": getattr(m, "decoder_name", type(m.decoder).__name__),
            "teacher": self.teacher.id,
            # All parameters (a loaded model may have requires_grad switched off).
            "params_core": count_parameters(m.core, trainable_only=False),
            "params_decoder": count_parameters(m.decoder, trainable_only=False),
            "params_total": count_parameters(m, trainable_only=False),
            **self.meta,
        }

    # -- stages ------------------------------------------------------------------------------
    @torch.inference_mode()
    def core_embeddings(self, q_embs: np.ndarray) -> np.ndarray:
        """Core forward: question embeddings (B, D) -> predicted answer embeddings (B, D)."""
        x = torch.as_tensor(np.asarray(q_embs, dtype=np.float32), device=self.device)  # (B, D)
        out = self.model.core(x)
        if isinstance(out, tuple):  # (embedding, activity) from cores that report activity
            out = out[0]
        pred = out.float().cpu().numpy()  # (B, D)
        # Decoders train on unit vectors; the Predictor normalises the same way.
        return unit_rows(pred) if self.options.normalize_core_output else pred

    @torch.inference_mode()
    def _generate(self, embs: np.ndarray, sample: bool = False, **kw: Any) -> list[str]:
        o = self.options
        x = torch.as_tensor(np.asarray(embs, dtype=np.float32), device=self.device)  # (B, D)
        ids = self.model.decoder.generate(
            x, max_new_tokens=o.max_new_tokens, num_beams=1 if sample else o.num_beams,
            do_sample=sample or o.do_sample, no_repeat_ngram_size=o.no_repeat_ngram_size, **kw,
        )  # fmt: skip
        return [self.tokenizer.decode(list(seq)).strip() for seq in ids]

    def decode(self, embs: np.ndarray) -> list[str]:
        """Embeddings (B, D) -> texts, in batches, reranked when ``options.rerank > 1``."""
        embs = np.asarray(embs, dtype=np.float32)
        bs = self.options.batch_size
        out: list[str] = []
        for start in range(0, len(embs), bs):
            chunk = embs[start : start + bs]  # (b, D)
            if self.options.rerank > 1:
                out.extend(self._decode_rerank(chunk, start))
            else:
                out.extend(self._generate(chunk))
        return out

    def _decode_rerank(self, embs: np.ndarray, offset: int) -> list[str]:
        """Best of ``n`` candidates (the plain decode + n-1 samples) by teacher cosine."""
        o, b = self.options, len(embs)
        cands = [self._generate(embs)]
        reps = np.repeat(embs, o.rerank - 1, axis=0)  # (b * (n-1), D)
        # Seed per chunk so results do not depend on what ran before (determinism), on a
        # forked RNG so the caller's random state is left alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(o.seed + offset)
            samples = self._generate(
                reps, True, temperature=o.rerank_temperature, top_p=o.rerank_top_p
            )
        for j in range(o.rerank - 1):
            cands.append(samples[j :: o.rerank - 1])  # the j-th sample of every item
        flat = [c for cand in cands for c in cand]  # (n * b,) candidate-major
        cemb = np.asarray(self.teacher.encode(flat), dtype=np.float32)  # (n * b, D)
        target = np.tile(embs, (len(cands), 1))  # (n * b, D)
        score = cosine_rows(cemb, target).reshape(len(cands), b)  # (n, b)
        best = np.argmax(score, axis=0)  # (b,) ties -> plain decode first
        return [cands[best[i]][i] for i in range(b)]

    def predict(self, questions: Sequence[str], cache: bool = True) -> list[Prediction]:
        """Answer ``questions`` through teacher -> core -> decoder."""
        if not questions:
            return []
        q = np.asarray(self.teacher.encode(list(questions), cache=cache), dtype=np.float32)
        core = self.core_embeddings(q)  # (B, D)
        texts = self.decode(core)
        return [Prediction(answer=t, core_emb=e) for t, e in zip(texts, core, strict=True)]

    def answer_texts(self, questions: Sequence[str], cache: bool = True) -> list[str]:
        """Just the answers (what a latency measurement times)."""
        return [p.answer for p in self.predict(questions, cache=cache)]


class EditingDecoder:
    """Decoder-only evaluation through the Predictor's ``decode``: ``edit`` (the nearest
    training answer is the prototype the decoder edits) or ``search`` (best of the plain,
    edited and retrieved texts by teacher cosine). Reported apart from the plain decoder,
    so retrieval is never mistaken for generation."""

    def __init__(self, predictor: Any, generative: GenerativeSystem, mode: str):
        self.predictor, self.generative, self.mode = predictor, generative, mode
        self.teacher = generative.teacher
        self.tokenizer = generative.tokenizer
        self.name = generative.name

    @classmethod
    def from_ref(cls, ref: str | None, generative: GenerativeSystem, release: Any, mode: str):
        """The Predictor of ``ref`` with the phrase bank of ``release``'s train split."""
        from celltext.inference.factory import load_predictor
        from celltext.inference.predictor import PredictorConfig

        bank = RetrievalIndex.for_release(generative.teacher, release, "train")
        o = generative.options
        config = PredictorConfig(
            release=release.version, do_sample=o.do_sample, max_new_tokens=o.max_new_tokens,
            num_beams=o.num_beams, decode_mode=mode, rerank=o.rerank,
            no_repeat_ngram_size=o.no_repeat_ngram_size,
        )  # fmt: skip
        predictor = load_predictor(
            ref, config=config, teacher=generative.teacher, bank=bank, backend="torch"
        )
        return cls(predictor, generative, mode)

    batch_invariant = True  # ``decode`` runs in batches of ``batch_size`` anyway

    @property
    def options(self) -> DecodeOptions:
        return self.generative.options

    def info(self) -> dict[str, Any]:
        return {**self.generative.info(), "kind": f"decoder_{self.mode}"}

    def decode(self, embs: np.ndarray) -> list[str]:
        """Embeddings (B, D) -> texts, in batches."""
        bs = self.generative.options.batch_size
        return [
            d.text
            for start in range(0, len(embs), bs)
            for d in self.predictor.decode(embs[start : start + bs], self.mode)
        ]


class PredictorSystem:
    """The production path with its quality check and fallback (the serving Predictor)."""

    def __init__(self, predictor: Any, generative: GenerativeSystem):
        self.predictor = predictor
        self.generative = generative
        self.teacher = generative.teacher
        self.tokenizer = generative.tokenizer
        self.name = generative.name

    @classmethod
    def from_ref(
        cls, ref: str | None, generative: GenerativeSystem, release: Any
    ) -> PredictorSystem:
        """``load_predictor(ref, fallback=True)`` with its phrase bank built from the
        ``train`` split of ``release`` (the same release the evaluation uses)."""
        from celltext.inference.predictor import PredictorConfig

        bank = RetrievalIndex.for_release(generative.teacher, release, "train")
        o = generative.options
        config = PredictorConfig(
            fallback=True,
            release=release.version,
            do_sample=o.do_sample,
            max_new_tokens=o.max_new_tokens,
            num_beams=o.num_beams,
            no_repeat_ngram_size=o.no_repeat_ngram_size,
            normalize_core_output=o.normalize_core_output,
        )
        from celltext.inference.factory import load_predictor

        predictor = load_predictor(
            ref, fallback=True, config=config, teacher=generative.teacher, bank=bank,
            backend="torch",
        )  # fmt: skip
        return cls(predictor, generative)

    # One Predictor.answer call per split. Its answers no longer depend on the batch
    # (prototypes are padded to a fixed width; tests/test_shipped_model.py), but the
    # teacher's batched encoding moves confidences by ~1e-6, which could move a calibration
    # bin edge, so the split is not answered in chunks and eval numbers stay bit-identical.
    batch_invariant = False

    def info(self) -> dict[str, Any]:
        """The generative model's info, marked as going through the Predictor."""
        return {**self.generative.info(), "kind": "predictor", "fallback": True}

    def predict(self, questions: Sequence[str], cache: bool = True) -> list[Prediction]:
        """Answers from the Predictor; core embeddings from the same checkpoint's core."""
        if not questions:
            return []
        answers = self.predictor.answer(list(questions))
        q = np.asarray(self.teacher.encode(list(questions), cache=cache), dtype=np.float32)
        core = self.generative.core_embeddings(q)  # (B, D)
        return [
            Prediction(
                # scored on the best candidate, also where the system abstained (the
                # abstention rate and the answered-only metrics are reported beside it)
                answer=a.best_guess if a.best_guess is not None else a.answer,
                core_emb=e,
                fallback=bool(a.fallback),
                confidence=float(a.confidence),
                fallback_reason=getattr(a, "fallback_reason", None),
                abstained=bool(a.abstained),
                provenance=a.provenance,
            )
            for a, e in zip(answers, core, strict=True)
        ]

    def answer_texts(self, questions: Sequence[str], cache: bool = True) -> list[str]:
        """Just the Predictor's answers (its own teacher cache setting applies)."""
        return [a.answer for a in self.predictor.answer(list(questions))]
