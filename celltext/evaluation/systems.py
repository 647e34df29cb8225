"""Question-answering systems as the evaluator and the benchmark see them.

Every system offers the members of :class:`System` (``name``, ``teacher``, ``tokenizer``,
``batch_size``, ``batch_invariant``, ``fallback``, ``info()``, ``decode_settings()``,
``reranked(n)``) and either answers questions (:class:`Answerer`: ``predict``,
``answer_texts``) or decodes embeddings (:class:`Decoder`: ``decode``). Four implement them:

- :class:`RetrievalSystem` (answerer): the nearest-neighbour baseline. Its "predicted
  embedding" is the teacher embedding of the retrieved answer, so core cosine is comparable.
- :class:`GenerativeSystem` (answerer and decoder): teacher -> core -> decoder, no fallback
  (``--no-fallback``): the :class:`~celltext.inference.predictor.Predictor` with
  ``fallback=False``, so its decoding options and reranking (``rerank`` candidates: greedy +
  seeded samples, best by teacher cosine to the core's prediction) are the served ones,
  not a copy.
- :class:`EditingDecoder` (decoder): decoder-only evaluation of retrieve-and-edit (``edit``,
  ``search``), the same Predictor's ``decode_texts``.
- :class:`PredictorSystem` (answerer): the production path (the Predictor with quality
  check, selector and phrase-bank fallback); core embeddings are the ones it answered from.

Only the generative path can be reranked; ``reranked`` of the others raises ``ValueError``.
Every decoding option is a field of :class:`~celltext.inference.options.PredictorConfig`.
Shapes: ``B`` questions, ``D`` teacher dim.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from celltext.index import RetrievalIndex
from celltext.inference.options import PredictorConfig
from celltext.inference.records import RETRIEVAL

NOT_RERANKABLE = "--rerank needs the generative path: add --no-fallback or --decoder-only"


class System(Protocol):
    """What every system tells the evaluator (see the module docstring)."""

    name: str
    teacher: Any
    tokenizer: Any  # None where nothing is decoded (retrieval)
    batch_size: int  # the chunk size when ``batch_invariant``
    batch_invariant: bool  # answering in chunks gives the answers of one call
    fallback: bool  # answers go through the quality check and the phrase-bank fallback

    def info(self) -> dict[str, Any]:
        """Description for reports (``kind``, architectures, parameter counts)."""
        ...

    def decode_settings(self) -> dict[str, Any] | None:
        """The plain generative path's decoding options (the report's ``decode``), or None
        where answers do not come from it alone."""
        ...

    def reranked(self, candidates: int) -> System:
        """The same system answering with the best of ``candidates`` (ValueError if it
        cannot)."""
        ...


class Answerer(System, Protocol):
    """A system that answers questions."""

    def predict(self, questions: Sequence[str], cache: bool = True) -> list[Prediction]:
        """One :class:`Prediction` per question."""
        ...

    def answer_texts(self, questions: Sequence[str], cache: bool = True) -> list[str]:
        """Just the answers (what a latency measurement times)."""
        ...


class Decoder(System, Protocol):
    """A system that turns embeddings into text (decoder-only evaluation)."""

    def decode(self, embs: np.ndarray) -> list[str]:
        """Embeddings (B, D) -> texts."""
        ...


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


class RetrievalSystem:
    """The honest baseline, what a sceptic would ship: teacher embedding of the question ->
    nearest training question in ``index`` -> its answer. No trainable parameters; every
    learned model is compared with it on the same splits, metrics and machine."""

    batch_invariant = False  # not checked: answering in chunks might move near-ties
    batch_size = 64
    fallback = False
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

    def decode_settings(self) -> None:
        """Nothing is decoded."""
        return None

    def reranked(self, candidates: int) -> RetrievalSystem:
        """Retrieval has one candidate per question."""
        raise ValueError(NOT_RERANKABLE)

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
    """Teacher -> core -> decoder: ``predictor`` (a Predictor with ``fallback=False``),
    answering in chunks of ``batch_size``."""

    fallback = False

    def __init__(
        self,
        predictor: Any,
        name: str = "model",
        batch_size: int = 64,
        meta: dict[str, Any] | None = None,
    ):
        if predictor.config.fallback.enabled:
            predictor = predictor.with_config(fallback={"enabled": False})
        self.predictor = predictor
        self.teacher = predictor.teacher
        self.tokenizer = predictor.backend.tokenizer
        self.name = name
        self.batch_size = batch_size
        self.meta = meta or {}

    @classmethod
    def of_model(
        cls,
        model: Any,
        tokenizer: Any,
        teacher: Any,
        name: str = "model",
        config: PredictorConfig | None = None,
        device: str = "cpu",
        **kwargs: Any,
    ) -> GenerativeSystem:
        """The torch Predictor of an in-memory model (``.core``, ``.decoder``)."""
        from celltext.inference.predictor import Predictor
        from celltext.inference.records import ModelInfo
        from celltext.inference.torch_backend import TorchBackend

        backend = TorchBackend(model, tokenizer, device)
        cfg = (config or PredictorConfig()).replace(fallback={"enabled": False})
        info = kwargs.pop("info", None) or ModelInfo(name, "local")
        return cls(Predictor(teacher, backend, config=cfg, info=info), name, **kwargs)

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: Any,
        config: PredictorConfig | None = None,
        device: str = "cpu",
        name: str | None = None,
        batch_size: int = 64,
    ) -> GenerativeSystem:
        """The torch Predictor of a :class:`celltext.registry.checkpoint.Checkpoint`."""
        from celltext.inference.records import model_info_from_checkpoint
        from celltext.teacher import load_teacher

        keys = ("registered_name", "registered_version", "weights_sha256", "config_hash")
        meta = {"path": str(ckpt.path), **{k: ckpt.metadata[k] for k in keys if k in ckpt.metadata}}
        return cls.of_model(
            ckpt.model, ckpt.tokenizer, load_teacher(ckpt.model.teacher_id),
            name or str(ckpt.path), config, device, batch_size=batch_size, meta=meta,
            info=model_info_from_checkpoint(ckpt, name),
        )  # fmt: skip

    @property
    def model(self) -> Any:
        """The torch model (``.core``, ``.decoder``)."""
        return self.predictor.backend.system

    @property
    def options(self) -> PredictorConfig:
        """The decoding options (the Predictor's config)."""
        return self.predictor.config

    @property
    def batch_invariant(self) -> bool:
        """Whether answering in chunks of ``batch_size`` gives the answers of one call (the
        decoder runs in those batches anyway; reranking draws its samples per call)."""
        return self.options.decoding.rerank.candidates <= 1

    def with_options(self, **changes: Any) -> GenerativeSystem:
        """A shallow copy with some decoding options replaced (shares the model)."""
        other = copy.copy(self)
        other.predictor = self.predictor.with_config(**changes)
        return other

    def reranked(self, candidates: int) -> GenerativeSystem:
        """The best of the greedy answer and ``candidates - 1`` seeded samples."""
        return self.with_options(decoding={"rerank": {"candidates": candidates}})

    def decode_settings(self) -> dict[str, Any]:
        """The Predictor's decoding options."""
        return self.options.to_dict()

    def info(self) -> dict[str, Any]:
        """Architecture names and parameter counts (names only for an onnxruntime export,
        which has no torch modules to count)."""
        from celltext.models.zoo import count_parameters

        m = getattr(self.predictor.backend, "system", None)
        if m is None:
            info = self.predictor.info
            return {"kind": "generative", "core": info.core, "decoder": info.decoder,
                    "teacher": self.teacher.id, "backend": self.predictor.backend.name,
                    **self.meta}  # fmt: skip
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

    def core_embeddings(self, q_embs: np.ndarray) -> np.ndarray:
        """Question embeddings (B, D) -> the core's predicted answer embeddings (B, D),
        normalised as the Predictor does."""
        return self.predictor.core(np.asarray(q_embs, dtype=np.float32))

    def decode(self, embs: np.ndarray) -> list[str]:
        """Embeddings (B, D) -> texts (the plain decoder), in chunks of ``batch_size``."""
        return _decode_in_chunks(self.predictor, embs, "generative", self.batch_size)

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


def _decode_in_chunks(predictor: Any, embs: np.ndarray, mode: str, size: int) -> list[str]:
    """``predictor.decode_texts`` over (B, D) embeddings, ``size`` rows at a time."""
    embs = np.asarray(embs, dtype=np.float32)
    return [
        t
        for start in range(0, len(embs), size)
        for t in predictor.decode_texts(embs[start : start + size], mode)
    ]


def _served(ref: str | None, generative: GenerativeSystem, release: Any, **changes: Any):
    """The torch Predictor of ``ref`` with ``generative``'s options and the phrase bank of
    ``release``'s train split (the release the evaluation uses)."""
    from celltext.inference.factory import load_predictor

    bank = RetrievalIndex.for_release(generative.teacher, release, "train")
    config = generative.options.replace(bank={"release": release.version}, **changes)
    return load_predictor(
        ref, fallback=config.fallback.enabled, config=config, teacher=generative.teacher, bank=bank,
        backend="torch",
    )  # fmt: skip


class EditingDecoder:
    """Decoder-only evaluation through the Predictor's ``decode_texts``: ``edit`` (the
    nearest training answer is the prototype the decoder edits) or ``search`` (best of the
    plain, edited and retrieved texts by teacher cosine). Reported apart from the plain
    decoder, so retrieval is never mistaken for generation."""

    batch_invariant = True  # ``decode`` runs in batches of ``batch_size`` anyway
    fallback = False

    def __init__(self, predictor: Any, generative: GenerativeSystem, mode: str):
        self.predictor, self.generative, self.mode = predictor, generative, mode
        self.teacher = generative.teacher
        self.tokenizer = generative.tokenizer
        self.name = generative.name
        self.batch_size = generative.batch_size

    @classmethod
    def from_ref(cls, ref: str | None, generative: GenerativeSystem, release: Any, mode: str):
        """The Predictor of ``ref`` with the phrase bank of ``release``'s train split."""
        served = _served(ref, generative, release, decoding={"mode": mode})
        return cls(served, generative, mode)

    @property
    def options(self) -> PredictorConfig:
        """The decoding options (the generative system's)."""
        return self.generative.options

    def with_options(self, **changes: Any) -> EditingDecoder:
        """A shallow copy with some decoding options replaced (``--rerank``: the edits then
        include ``rerank.candidates - 1`` seeded samples; shares the model)."""
        predictor = self.predictor.with_config(**changes)
        return EditingDecoder(predictor, self.generative.with_options(**changes), self.mode)

    def reranked(self, candidates: int) -> EditingDecoder:
        """The edits include ``candidates - 1`` seeded samples."""
        return self.with_options(decoding={"rerank": {"candidates": candidates}})

    def info(self) -> dict[str, Any]:
        """The generative model's info, marked with the decoding mode (and, for ``correct``,
        the corrector's search settings)."""
        info = {**self.generative.info(), "kind": f"decoder_{self.mode}"}
        if self.mode == "correct":
            info["correction"] = self.options.decoding.correction.to_dict()
        return info

    def decode_settings(self) -> None:
        """None: the report names the mode (``decode_mode``)."""
        return None

    def decode(self, embs: np.ndarray) -> list[str]:
        """Embeddings (B, D) -> texts, in chunks of ``batch_size``."""
        return _decode_in_chunks(self.predictor, embs, self.mode, self.batch_size)


class PredictorSystem:
    """The production path with its quality check, selector and fallback."""

    # One Predictor.answer call per split. Its answers do not depend on the batch
    # (prototypes are padded to a fixed width; tests/test_shipped_model.py), but the
    # teacher's batched encoding moves confidences by ~1e-6, which could move a calibration
    # bin edge, so the split is not answered in chunks and eval numbers stay bit-identical.
    batch_invariant = False
    fallback = True

    def __init__(self, predictor: Any, generative: GenerativeSystem):
        self.predictor = predictor
        self.generative = generative
        self.teacher = generative.teacher
        self.tokenizer = generative.tokenizer
        self.name = generative.name
        self.batch_size = generative.batch_size

    @classmethod
    def from_ref(
        cls, ref: str | None, generative: GenerativeSystem, release: Any
    ) -> PredictorSystem:
        """The Predictor of ``ref`` with the fallback on and the phrase bank of ``release``'s
        train split."""
        return cls(_served(ref, generative, release, fallback={"enabled": True}), generative)

    def info(self) -> dict[str, Any]:
        """The generative model's info, marked as going through the Predictor."""
        return {**self.generative.info(), "kind": "predictor", "fallback": True}

    def decode_settings(self) -> None:
        """None: answers come from the selector, not from the generative path alone."""
        return None

    def reranked(self, candidates: int) -> PredictorSystem:
        """The production path reranks with its own ``rerank`` setting only."""
        raise ValueError(NOT_RERANKABLE)

    def predict(self, questions: Sequence[str], cache: bool = True) -> list[Prediction]:
        """The Predictor's answers with the core embeddings they were answered from (the
        teacher and the core run once per question)."""
        if not questions:
            return []
        answers, core = self.predictor.answer_with_core(list(questions))
        if core is None:  # the core itself failed: every answer is a fallback
            core = np.full((len(answers), self.teacher.dim), np.nan, dtype=np.float32)
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
