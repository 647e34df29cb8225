"""The onnxruntime stages of the predictor: no torch is imported on this path.

:func:`load_export` gives the production :class:`~celltext.inference.predictor.Predictor`
(quality check, selector, fallback, ``Answer`` records: the same object as with torch) its
teacher and an :class:`OrtBackend` over the files of :mod:`celltext.export.onnx`:

- teacher: ``tokenizers`` (the teacher's ``tokenizer.json``) -> ``teacher.onnx``;
- core: ``core.onnx``;
- decoder: :class:`OrtStepper` feeds ``decoder_prefill.onnx`` (or
  ``decoder_prefill_edit.onnx`` with a prototype) and ``decoder_step.onnx`` (the state
  tensors fed back each step) to the one decoding loop, :func:`celltext.generation.generate`,
  and ``decoder_verify.onnx`` (a block of tokens, the logits of every position) to
  speculative decoding (:mod:`celltext.inference.speculative`), which starts with
  ``decoder_prefill_block.onnx`` where the export has it: the prefix and a first draft in
  one call, so a copied prototype costs one decoder call in all.

The KV cache is not preallocated: the exported graphs are standard ONNX operators, whose
outputs are new tensors, so the step graph's ``Concat`` writes the T + 1 positions into a
fresh output each step whatever buffer the past came from, and onnxruntime's CPU provider
reads only contiguous inputs, so a slice ``[:, :, :T]`` of a bigger buffer would be copied
before every call. Writing in place needs a fused attention operator with a shared
past/present buffer (``com.microsoft`` ``GroupQueryAttention``'s
``past_present_share_buffer``, on the CUDA provider): a different graph, not a change here.
Speculative decoding cuts the number of steps instead (one call for a copied prototype).

Execution providers: CPU by default; ``providers=["TensorrtExecutionProvider", ...]`` or
``["CUDAExecutionProvider", ...]`` where onnxruntime was built with them
(:func:`available_providers`).

:func:`load_export` first verifies every file against the export's manifest
(:func:`~celltext.inference.export_files.verify_export`); a file that does not load
(truncated protobuf, invalid tokenizer) is an :class:`ExportIntegrityError` naming it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from celltext.generation import SpecialTokens
from celltext.inference.backend import Backend, Capabilities, PredictorParts, speculative_rows
from celltext.inference.export_files import (
    FORMAT_VERSION,
    MANIFEST,
    ExportIntegrityError,
    verify_export,
)
from celltext.inference.options import PredictorConfig
from celltext.inference.ranking import Ranker
from celltext.inference.records import ModelInfo
from celltext.inference.selector import AnswerSelector

log = logging.getLogger(__name__)


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers."""
    return list(ort.get_available_providers())


def _session(
    path: Path, providers: Sequence[str] | None, threads: int, spin: bool = True
) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if not spin:  # idle threads sleep instead of spinning (no CPU stolen from other stages)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(
            str(path), opts, providers=list(providers or ["CPUExecutionProvider"])
        )
    except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, ...)
        raise ExportIntegrityError(path.parent, path.name, _load_problem(exc)) from exc


def _tokenizer(path: Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception ("Model missing", ...)
        raise ExportIntegrityError(path.parent, path.name, _load_problem(exc)) from exc


def _load_problem(exc: Exception) -> str:
    message = " ".join(str(exc).split())[:200]
    return f"does not load ({type(exc).__name__}: {message})"


_TEACHER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
BULK_TEXTS = 1024  # more texts than this per encode() run on every core
TEACHER_THREADS = min(4, os.cpu_count() or 1)
"""Intra-op threads of the teacher's answering session, without spinning: on the 2-core
machine of the docs a batch of 64 questions encodes 1.8x faster than on one thread (529 vs
294 per second) and one question no slower (3.2 vs 3.6 ms p50), whereas the small core and
decoder graphs stay on one (two spinning threads made a whole answer 2.4x slower)."""


class OrtTeacher:
    """The teacher as ``tokenizers`` + ``teacher.onnx``: ``encode(texts) -> (N, D)``."""

    def __init__(self, folder: Path, info: dict[str, Any], providers=None, threads: int = 1):
        self.id = info["id"]
        self.dim = int(info["dim"])
        self.inputs = list(info["inputs"])
        self.tokenizer = _tokenizer(folder / "teacher_tokenizer.json")
        self.tokenizer.enable_truncation(max_length=int(info["max_seq_length"]))
        self.tokenizer.no_padding()  # the file may pad to a fixed 128; _pad pads per batch
        self.pad_id = int(info.get("pad_id", 0))
        self.session = _session(
            folder / "teacher.onnx", providers, max(threads, TEACHER_THREADS), spin=False
        )
        self._bulk_args = (folder / "teacher.onnx", providers, os.cpu_count() or 1)

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, **_
    ) -> np.ndarray:
        """L2-normalised embeddings (N, D) float32. Texts are batched by token length (as
        sentence-transformers does), so a batch pads to similar lengths; the output keeps
        the input order."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        session = self._bulk_session if len(texts) > BULK_TEXTS else self.session
        encs = self.tokenizer.encode_batch(texts) if texts else []
        order = np.argsort([-len(e.ids) for e in encs], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = self._pad([encs[i] for i in rows])
            feed = {k: v for k, v in batch.items() if k in self.inputs}
            out[rows] = session.run(None, feed)[0]
        return out

    def features(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The graph's inputs for ``texts`` (tokenised, padded), as :meth:`forward` takes
        them."""
        batch = self._pad(self.tokenizer.encode_batch(list(texts)))
        return {k: v for k, v in batch.items() if k in self.inputs}

    def forward(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """One run of ``teacher.onnx`` over tokenised inputs: no tokeniser, the least an
        embedding costs (``celltext bench``'s teacher floor). (N, D) float32."""
        return self.session.run(None, feed)[0]

    @cached_property
    def _bulk_session(self) -> ort.InferenceSession:
        """A second session on every core, for building a phrase bank (same weights, same
        embeddings; answering keeps the one-thread session)."""
        return _session(*self._bulk_args)

    def _pad(self, encs) -> dict[str, np.ndarray]:
        """Right-pad one batch of encodings to its longest (attention mask 0 there)."""
        width = max(len(e.ids) for e in encs)
        arrays = {n: np.zeros((len(encs), width), dtype=np.int64) for n in _TEACHER_INPUTS}
        arrays["input_ids"][:] = self.pad_id
        for i, e in enumerate(encs):
            n = len(e.ids)
            arrays["input_ids"][i, :n] = e.ids
            arrays["attention_mask"][i, :n] = e.attention_mask
            arrays["token_type_ids"][i, :n] = e.type_ids
        return arrays


class OrtStepper:
    """One batch through the exported decoder: prefill, then one step per token (or one
    verify call per block of tokens), the state tensors (KV caches growing by a position per
    token, fixed-size Mamba/conv states) fed back as they came out."""

    def __init__(self, backend: OrtBackend, emb: np.ndarray, proto_ids: np.ndarray | None):
        self.backend, self.emb, self.proto = backend, emb, proto_ids
        self.state: list[np.ndarray] = []
        self.block: np.ndarray | None = None  # the last verify() block (B, W)
        self.before: list[np.ndarray] = []  # the state before it
        self.past = 0  # positions of the attention caches before it
        self.drafts_first = backend.prefill_block_file and proto_ids is not None

    def first(self) -> np.ndarray:
        if self.proto is None:
            logits, *self.state = self.backend.prefill.run(None, {"emb": self.emb})
        else:
            feed = {"emb": self.emb, "proto_ids": self.proto}
            logits, *self.state = self.backend.prefill_edit.run(None, feed)
        return logits  # (B, V)

    def first_block(self, block: np.ndarray) -> np.ndarray:
        """Prefill with ``block`` (B, W), ``<bos>`` then a draft, fed after the prefix
        (``decoder_prefill_block.onnx``): the logits (B, W, V) of every block position, as
        :meth:`first` then :meth:`verify` of the draft would give them, in one call."""
        self.block = np.asarray(block, dtype=np.int64)
        feed = {"emb": self.emb, "proto_ids": self.proto, "block_ids": self.block}
        logits, *self.state = self.backend.prefill_block.run(None, feed)
        self.before, self.past = [], self.state[0].shape[2] - self.block.shape[1]
        return logits

    def next(self, tokens: np.ndarray) -> np.ndarray:
        feed = {"input_ids": np.asarray(tokens, dtype=np.int64)[:, None]}  # (B, 1)
        logits, *self.state = self.backend.step.run(None, feed | self._state_feed())
        return logits

    def verify(self, block: np.ndarray) -> np.ndarray:
        """Feed ``block`` (B, W) and return the logits (B, W, V) of every position (through
        ``decoder_verify.onnx``, in pieces of at most its ``max_tokens``)."""
        self.block, self.before = np.asarray(block, dtype=np.int64), self.state
        self.past = self.state[0].shape[2] if self.backend.truncatable else 0
        return self._feed(self.block)

    def keep(self, n: int) -> None:
        """Keep the first ``n`` positions of the last :meth:`verify` block: the attention
        caches are sliced back; fixed-size states restart from the state before the block
        and are fed the kept tokens again."""
        width = self.block.shape[1]
        if n == width:
            return
        if self.backend.truncatable:
            self.state = [np.ascontiguousarray(s[:, :, : self.past + n]) for s in self.state]
            return
        self.state = self.before
        if n:
            self._feed(self.block[:, :n])

    def _state_feed(self) -> dict[str, np.ndarray]:
        return {f"in_{n}": s for n, s in zip(self.backend.state_names, self.state, strict=True)}

    def _feed(self, block: np.ndarray) -> np.ndarray:
        limit = self.backend.verify_max_tokens or block.shape[1]
        logits = []
        for start in range(0, block.shape[1], limit):
            feed = {"input_ids": np.ascontiguousarray(block[:, start : start + limit])}
            out, *self.state = self.backend.verify_session.run(None, feed | self._state_feed())
            logits.append(out)  # (B, w, V)
        return logits[0] if len(logits) == 1 else np.concatenate(logits, axis=1)

    def reorder(self, index: np.ndarray) -> None:
        self.emb = self.emb[index]
        self.proto = None if self.proto is None else self.proto[index]
        self.state = [np.ascontiguousarray(s[index]) for s in self.state]


class OrtBackend(Backend):
    """Core and decoder sessions of an export (the twin of
    :class:`~celltext.inference.torch_backend.TorchBackend`)."""

    name = "onnxruntime"

    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        providers=None,
        threads: int = 1,
        speculative: int | None = None,
    ):
        from celltext.tokenizer import CellTokenizer

        info = manifest["decoder"]
        self.speculative_rows = speculative_rows(speculative)
        self.verify_max_tokens = (info.get("verify") or {}).get("max_tokens")
        self.truncatable = all(layer["kind"] == "KVCache" for layer in info["state"])
        self.dim = int(manifest["teacher"]["dim"])
        self._core_info = dict(manifest.get("core", {}))
        edits = bool(info.get("edits"))
        self.capabilities = Capabilities(
            edits=edits,
            max_proto_tokens=int(info.get("max_proto_tokens", 0)) if edits else 0,
            activity=bool(self._core_info.get("activity")),
        )
        self.special = SpecialTokens(int(info["pad_id"]), int(info["bos_id"]), int(info["eos_id"]))
        self.state_names = [n for layer in info["state"] for n in layer["names"]]
        self.providers = list(providers or ["CPUExecutionProvider"])
        self._args = (folder, providers, threads)
        self.prefill_block_file = bool(info.get("prefill_block")) and self.truncatable
        self.core_session = self._open("core.onnx")
        self.step = self._open("decoder_step.onnx")
        # production edits, so an editing decoder opens the plain prefill only when asked,
        # and a speculative one starts from the block prefill (the edit prefill on demand)
        if not edits:
            _ = self.prefill
        elif self.speculative_rows > 0:
            _ = self.verify_session  # every greedy edit of a small batch verifies blocks
            _ = self.prefill_block if self.prefill_block_file else self.prefill_edit
        else:
            _ = self.prefill_edit
        try:
            self.tokenizer = CellTokenizer.load(folder / "tokenizer.json")
        except Exception as exc:  # tokenizers raises a bare Exception ("Model missing", ...)
            raise ExportIntegrityError(folder, "tokenizer.json", _load_problem(exc)) from exc

    @cached_property
    def prefill(self) -> ort.InferenceSession:
        """The plain prefill (no prototype); for an editing decoder it is opened on first
        use, since production always edits (saves ~15 MB and 0.1 s at start-up)."""
        return self._open("decoder_prefill.onnx")

    @cached_property
    def prefill_edit(self) -> ort.InferenceSession:
        """The prefill with a prototype (``decoder_prefill_edit.onnx``): beam search,
        sampling and batches too big to speculate."""
        return self._open("decoder_prefill_edit.onnx")

    @cached_property
    def prefill_block(self) -> ort.InferenceSession:
        """``decoder_prefill_block.onnx``: the prefix and a first draft in one call."""
        return self._open("decoder_prefill_block.onnx")

    @cached_property
    def verify_session(self) -> ort.InferenceSession:
        """``decoder_verify.onnx``, opened on the first speculative decode."""
        return self._open("decoder_verify.onnx")

    @cached_property
    def _activity_session(self) -> ort.InferenceSession:
        return self._open("core_activity.onnx")

    def _open(self, name: str) -> ort.InferenceSession:
        folder, providers, threads = self._args
        return _session(folder / name, providers, threads)

    def activity(self, q_embs: np.ndarray) -> dict[str, Any] | None:
        """Lattice activity for one question embedding (1, D), from ``core_activity.onnx``
        (opened on first use); None for cores without a lattice."""
        from celltext.inference.activity import activity_record

        info = self._core_info
        if not self.capabilities.activity:
            return None
        feed = {"question_emb": np.ascontiguousarray(q_embs, dtype=np.float32)}
        act = self._activity_session.run(None, feed)[1]
        size = info.get("lattice_size")
        return activity_record(act[0], None if size is None else tuple(size))

    def core(self, q_embs: np.ndarray) -> np.ndarray:
        """(B, D) -> (B, D)."""
        feed = {"question_emb": np.ascontiguousarray(q_embs, dtype=np.float32)}
        return self.core_session.run(None, feed)[0]

    def stepper(self, embs: np.ndarray, proto_ids: np.ndarray | None) -> OrtStepper:
        """The exported decoder's state tensors for (B, D) embeddings (and (B, P) ids)."""
        emb = np.ascontiguousarray(embs, dtype=np.float32)
        return OrtStepper(self, emb, None if proto_ids is None else proto_ids.astype(np.int64))


def load_export(
    folder: str | Path, providers: Sequence[str] | None = None, threads: int = 1
) -> PredictorParts:
    """The teacher, backend, info, selector and exported config of a
    :class:`~celltext.inference.predictor.Predictor`, after verifying every file against the
    manifest. The phrase bank is not part of an export (see ``factory.load_predictor``)."""
    folder = Path(folder)
    manifest = verify_export(folder)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ExportIntegrityError(
            folder, MANIFEST, f"export format {manifest.get('format_version')} is not this "
            f"celltext's ({FORMAT_VERSION}); rebuild it with `celltext export onnx`",
        )  # fmt: skip
    teacher = OrtTeacher(folder, manifest["teacher"], providers, threads)
    backend = OrtBackend(folder, manifest, providers, threads)
    model = manifest.get("model", {})
    info = ModelInfo(
        name=str(model.get("name", folder.name)),
        version=f"{model.get('version', 'local')}+onnx",
        path=str(folder), core=model.get("core"), decoder=model.get("decoder"),
        teacher_id=teacher.id, dim=teacher.dim,
    )  # fmt: skip
    return PredictorParts(
        teacher=teacher,
        backend=backend,
        info=info,
        selector=AnswerSelector.for_model(folder),
        config=PredictorConfig.from_dict(manifest.get("predictor", {})),
        ranker=Ranker.load(folder),
    )
