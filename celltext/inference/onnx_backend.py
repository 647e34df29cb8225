"""Answer questions with onnxruntime only: no torch is imported on this path.

:class:`OrtPredictor` is the production :class:`~celltext.inference.predictor.Predictor`
(quality check, fallback, ``Answer`` records) with its three model stages replaced by
ONNX Runtime sessions over the files of :mod:`celltext.export.onnx`:

- teacher: ``tokenizers`` (the teacher's ``tokenizer.json``) -> ``teacher.onnx``;
- core: ``core.onnx``;
- decoder: greedy decoding with ``decoder_prefill.onnx`` + ``decoder_step.onnx`` (the
  state tensors fed back each step), or ``decoder_full.onnx`` re-run on the growing
  sequence when the step could not be exported.

Execution providers: CPU by default; ``providers=["TensorrtExecutionProvider", ...]`` or
``["CUDAExecutionProvider", ...]`` where onnxruntime was built with them
(:func:`available_providers`).

:meth:`OrtPredictor.from_dir` first verifies every file against the export's manifest
(:func:`~celltext.inference.export_files.verify_export`); a file that does not load
(truncated protobuf, invalid tokenizer) is an :class:`ExportIntegrityError` naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from celltext.inference.export_files import ExportIntegrityError, verify_export
from celltext.inference.fallback import FallbackBank
from celltext.inference.predictor import ModelInfo, Predictor, PredictorConfig
from celltext.ngrams import banned_next_tokens

log = logging.getLogger(__name__)


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers."""
    return list(ort.get_available_providers())


def _session(path: Path, providers: Sequence[str] | None, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
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


class OrtTeacher:
    """The teacher as ``tokenizers`` + ``teacher.onnx``: ``encode(texts) -> (N, D)``."""

    def __init__(self, folder: Path, info: dict[str, Any], providers=None, threads: int = 1):
        self.id = info["id"]
        self.dim = int(info["dim"])
        self.inputs = list(info["inputs"])
        self.tokenizer = _tokenizer(folder / "teacher_tokenizer.json")
        self.tokenizer.enable_truncation(max_length=int(info["max_seq_length"]))
        self.tokenizer.enable_padding(pad_id=int(info.get("pad_id", 0)))
        self.session = _session(folder / "teacher.onnx", providers, threads)

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, **_
    ) -> np.ndarray:
        """L2-normalised embeddings (N, D) float32."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            encs = self.tokenizer.encode_batch(texts[start : start + batch_size])
            feed = {
                "input_ids": np.array([e.ids for e in encs], dtype=np.int64),  # (b, L)
                "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
            }
            feed = {k: v for k, v in feed.items() if k in self.inputs}
            out[start : start + len(encs)] = self.session.run(None, feed)[0]
        return out


class OrtTokenizer:
    """Decoding side of the CellTokenizer with ``tokenizers`` only."""

    def __init__(self, path: Path):
        self._tok = _tokenizer(path)

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)


class OrtSystem:
    """Core and decoder sessions with greedy decoding."""

    def __init__(self, folder: Path, manifest: dict[str, Any], providers=None, threads: int = 1):
        self.dim = int(manifest["teacher"]["dim"])
        self.decoder_info = manifest["decoder"]
        self.core = _session(folder / "core.onnx", providers, threads)
        self.mode = self.decoder_info["mode"]
        if self.mode == "step":
            self.prefill = _session(folder / "decoder_prefill.onnx", providers, threads)
            self.step = _session(folder / "decoder_step.onnx", providers, threads)
            self.state_names = [n for layer in self.decoder_info["state"] for n in layer["names"]]
        else:
            self.full = _session(folder / "decoder_full.onnx", providers, threads)

    def run_core(self, q: np.ndarray) -> np.ndarray:
        """(B, D) -> (B, D)."""
        return self.core.run(None, {"question_emb": np.ascontiguousarray(q, dtype=np.float32)})[0]

    def greedy(
        self,
        emb: np.ndarray,
        max_new_tokens: int,
        repetition_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
    ) -> list[list[int]]:
        """Greedy token ids (without BOS/EOS) for each embedding row (B, D), with the same
        logit processing as :func:`celltext.models.generation.generate`."""
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        eos = int(self.decoder_info["eos_id"])
        batch = emb.shape[0]
        out: list[list[int]] = [[] for _ in range(batch)]
        done = np.zeros(batch, dtype=bool)
        if self.mode == "step":
            logits, *state = self.prefill.run(None, {"emb": emb})  # (B, V), state tensors
        else:
            ids = np.full((batch, 1), int(self.decoder_info["bos_id"]), dtype=np.int64)  # (B, 1)
            logits = self.full.run(None, {"emb": emb, "input_ids": ids})[0][:, -1]  # (B, V)
        for _ in range(max_new_tokens):
            logits = self._process(logits, out, repetition_penalty, no_repeat_ngram_size)
            nxt = logits.argmax(axis=-1)  # (B,)
            for b in range(batch):
                if not done[b]:
                    if nxt[b] == eos:
                        done[b] = True
                    else:
                        out[b].append(int(nxt[b]))
            if done.all():
                break
            nxt_ids = np.where(done, eos, nxt).astype(np.int64)[:, None]  # (B, 1)
            if self.mode == "step":
                feed = {"input_ids": nxt_ids} | {
                    f"in_{n}": s for n, s in zip(self.state_names, state, strict=True)
                }
                logits, *state = self.step.run(None, feed)
            else:
                ids = np.concatenate([ids, nxt_ids], axis=1)  # (B, T+1)
                logits = self.full.run(None, {"emb": emb, "input_ids": ids})[0][:, -1]
        return out

    def _process(self, logits: np.ndarray, history: list[list[int]], penalty: float, ngram: int):
        """Never pad/bos; CTRL repetition penalty; n-gram blocking (as in generation.py)."""
        logits = np.array(logits, dtype=np.float32)  # (B, V) copy
        logits[:, [int(self.decoder_info["pad_id"]), int(self.decoder_info["bos_id"])]] = -np.inf
        for b, row in enumerate(history):
            if penalty != 1.0 and row:
                seen = np.unique(row)
                vals = logits[b, seen]
                logits[b, seen] = np.where(vals > 0, vals / penalty, vals * penalty)
            banned = banned_next_tokens(row, ngram)
            if banned:
                logits[b, list(banned)] = -np.inf
        return logits


class OrtPredictor(Predictor):
    """The production predictor on ONNX Runtime (see module docstring)."""

    @classmethod
    def from_dir(
        cls,
        folder: str | Path,
        fallback: bool = True,
        threshold: float | None = None,
        bank: FallbackBank | str | Path | None = None,
        providers: Sequence[str] | None = None,
        threads: int = 1,
    ) -> OrtPredictor:
        """Load an export directory. ``bank`` is a :class:`FallbackBank`, the path of a saved
        one, ``"release"`` (the configured release's bank, built once and cached), or None
        (the fallback then answers with a fixed text)."""
        folder = Path(folder)
        manifest = verify_export(folder)
        teacher = OrtTeacher(folder, manifest["teacher"], providers, threads)
        system = OrtSystem(folder, manifest, providers, threads)
        tokenizer = OrtTokenizer(folder / "tokenizer.json")
        cfg = PredictorConfig.from_dict(manifest.get("predictor", {})).replace(
            fallback=fallback, num_beams=1, do_sample=False, rerank=0
        )
        if threshold is not None:
            cfg = cfg.replace(threshold=threshold)
        if bank == "release":
            from celltext.inference.loading import load_bank

            bank = load_bank(teacher, cfg, required=False)
        elif isinstance(bank, (str, Path)):
            bank = FallbackBank.load(bank)
        model = manifest.get("model", {})
        info = ModelInfo(
            name=str(model.get("name", folder.name)),
            version=f"{model.get('version', 'local')}+onnx",
            path=str(folder), core=model.get("core"), decoder=model.get("decoder"),
            teacher_id=teacher.id, dim=teacher.dim,
        )  # fmt: skip
        pred = cls(teacher, system=system, tokenizer=tokenizer, bank=bank, config=cfg, info=info)
        pred.providers = list(providers or ["CPUExecutionProvider"])
        return pred

    def _core(self, q_embs: np.ndarray) -> np.ndarray:
        pred = self.system.run_core(q_embs)  # (B, D)
        if not np.isfinite(pred).all():
            raise ValueError("core returned NaN or infinity")
        if self.config.normalize_core_output:
            pred = pred / np.maximum(np.linalg.norm(pred, axis=1, keepdims=True), 1e-12)
        return pred.astype(np.float32)

    def _generate(self, embs: np.ndarray) -> list[str]:
        cfg = self.config
        ids = self.system.greedy(
            embs, cfg.max_new_tokens, cfg.repetition_penalty, cfg.no_repeat_ngram_size
        )
        return [self.tokenizer.decode(seq).strip() for seq in ids]

    def activity(self, question: str) -> dict[str, Any] | None:
        """The exported core has no activity output."""
        return None
