"""Export a model (teacher, core, decoder) to ONNX for the torch-free onnxruntime path.

Files written to the output directory (``manifest.json`` lists them with sha256):

- ``teacher.onnx``: the teacher's transformer + mean pooling + L2 normalisation;
  inputs ``input_ids``, ``attention_mask`` (+ ``token_type_ids`` for BERT), output
  ``embedding`` (B, D); its weights are in ``teacher.onnx.data`` (ONNX external data, mapped
  from the file). ``teacher_tokenizer.json`` is its tokenizer for ``tokenizers``.
- ``core.onnx``: ``question_emb`` (B, D) -> ``answer_emb`` (B, D); lattice cores also
  ``core_activity.onnx`` with the cells' activity (the web page's lattice view).
- ``decoder_prefill.onnx``: ``emb`` (B, D) -> ``logits`` (B, V) of the first answer token
  and the decoder's incremental state after the K prefix vectors and ``<bos>``;
- ``decoder_prefill_edit.onnx`` (decoders that edit a retrieved text): the same with
  ``proto_ids`` (B, P) too, P the decoder's fixed ``max_proto_tokens``;
- ``decoder_step.onnx``: ``input_ids`` (B, 1) + state -> ``logits`` (B, V) + new state.
  The state is explicit tensors: per attention layer ``s{i}_k``/``s{i}_v`` (B, H, T, Dh)
  growing by one position per step (KV cache), per Mamba layer its fixed-size
  ``s{i}_conv``/``s{i}_ssm``, per causal conv layer ``s{i}_buf``. Each new token costs one
  step, as in PyTorch.
- ``decoder_verify.onnx``: ``input_ids`` (B, L), L dynamic, + state -> ``logits`` (B, L, V)
  of every position + new state: speculative decoding verifies L - 1 draft tokens in one
  call (:mod:`celltext.inference.speculative`; :func:`celltext.models.stepper.decode_block`
  traced with L = 3, so the multi-token paths are the ones traced; they hold for L = 1).
- ``tokenizer.json``: the model's CellTokenizer; ``selector.json``: the model's fitted
  answer selector, when it has one.

The export reuses the model's own modules and caches unchanged: every sequence layer's
``step(x, cache) -> (y, cache)`` is functional and its cache a NamedTuple of tensors, so the
exported step is the same code as ``decoder.decode``. Tracing uses the TorchScript-based
exporter (``dynamo=False``; the dynamo exporter needs ``onnxscript``).

An export is written into a fresh temporary folder beside the output folder, which it
replaces only when complete (:func:`~celltext.export.publish.staged_dir`): a killed export
leaves the previous one intact, and no file is ever appended to. :func:`build_export`
verifies a cached export against its manifest before reusing it and rebuilds it when it is
broken.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from celltext.export.publish import staged_dir, write_manifest
from celltext.inference.export_files import (
    FORMAT_VERSION,
    SELECTOR_FILES,
    SERVED_TEACHER,
    TEACHER_PRECISIONS,
)
from celltext.inference.selector import SELECTOR_FILE

log = logging.getLogger(__name__)

OPSET = 17


# -- explicit decoder state ---------------------------------------------------------------
# Every sequence layer's cache is a NamedTuple of tensors (KVCache (k, v) growing by one
# position per step, MambaCache (conv, ssm) and ConvCache (buf) of fixed size), so the state
# flattens to named tensors and back without knowing the layer types.
def state_spec(decoder: nn.Module) -> list[dict[str, Any]]:
    """Per layer: cache type and tensor names of the incremental state (module docstring)."""
    return [
        {"kind": type(cache).__name__, "names": [f"s{i}_{f}" for f in cache._fields]}
        for i, cache in enumerate(decoder.new_state(1).caches)
    ]


def _flatten(caches: list[Any]) -> list[torch.Tensor]:
    return [t for cache in caches for t in cache]


def _unflatten(template: list[Any], tensors: list[torch.Tensor]) -> list[Any]:
    caches, j = [], 0
    for cache in template:
        n = len(cache._fields)
        caches.append(type(cache)(*tensors[j : j + n]))
        j += n
    return caches


class DecoderPrefill(nn.Module):
    """emb (B, D) [+ proto_ids (B, P)] -> first-token logits (B, V) and the state after the
    prefix and ``<bos>``."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, emb: torch.Tensor, proto_ids: torch.Tensor | None = None):
        state = self.decoder.new_state(emb.shape[0])  # batch traced from emb
        bos = torch.full_like(emb[:, :1], self.decoder.cfg.bos_id, dtype=torch.long)  # (B, 1)
        prefix = {} if proto_ids is None else {"proto_ids": proto_ids}  # (B, P)
        logits = self.decoder.decode(bos, state, emb=emb, **prefix)  # (B, V)
        return (logits, *_flatten(state.caches))


class DecoderPrefillBlock(nn.Module):
    """emb (B, D) + proto_ids (B, P) + block_ids (B, W) (``<bos>``, then a draft) -> the
    logits (B, W, V) of every block position and the state after the block: the prefill and
    the first verify of speculative decoding in one call."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, emb: torch.Tensor, proto_ids: torch.Tensor, block_ids: torch.Tensor):
        state = self.decoder.new_state(emb.shape[0])
        logits = self.decoder.decode(
            block_ids, state, emb=emb, all_positions=True, proto_ids=proto_ids
        )  # (B, W, V)
        return (logits, *_flatten(state.caches))


class DecoderStep(nn.Module):
    """input_ids (B, 1) + state -> logits (B, V) + new state; with ``block``, input_ids
    (B, L) -> logits (B, L, V) of every position + new state (the verify graph)."""

    def __init__(self, decoder: nn.Module, block: bool = False):
        super().__init__()
        self.decoder, self.block = decoder, block

    def forward(self, input_ids: torch.Tensor, *state: torch.Tensor):
        from celltext.models.decoders.base import DecoderState
        from celltext.models.stepper import decode_block

        dec_state = DecoderState(_unflatten(self.decoder.new_state(1).caches, list(state)))
        dec_state.pos = 1  # past the prefix: decode() feeds tokens only
        if self.block:
            logits = decode_block(self.decoder, input_ids, dec_state)  # (B, L, V)
        else:
            logits = self.decoder.decode(input_ids, dec_state)  # (B, V)
        return (logits, *_flatten(dec_state.caches))


VERIFY_TRACE_TOKENS = 3  # the verify graph's traced block width (any width > 1: the same)


def verify_max_tokens(decoder: nn.Module) -> int | None:
    """The widest block the verify graph computes correctly: a Mamba layer's chunked scan is
    traced for one chunk (its loop over chunks unrolls at trace time), so blocks of at most
    ``chunk_size`` tokens; attention and conv layers take any width (None)."""
    from celltext.models.blocks.mamba import MambaBlock

    sizes = [int(m.cfg.chunk_size) for m in decoder.modules() if isinstance(m, MambaBlock)]
    return min(sizes) if sizes else None


class TeacherPooled(nn.Module):
    """The teacher transformer + attention-masked mean pooling + L2 normalisation."""

    def __init__(self, transformer: nn.Module, use_token_types: bool):
        super().__init__()
        self.transformer = transformer
        self.use_token_types = use_token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.use_token_types:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.transformer(**kwargs).last_hidden_state  # (B, L, H)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


# -- export ---------------------------------------------------------------------------------
def _rms_norm_symbolic(g, x, normalized_shape, weight, eps):
    """``aten::rms_norm`` (the fused op behind ``F.rms_norm``) as opset-17 primitives:
    ``x / sqrt(mean(x^2) + eps) * weight`` over the normalised trailing axes."""
    from torch.onnx import symbolic_helper as sh

    dims = sh._parse_arg(normalized_shape, "is")
    eps_value = None if sh._is_none(eps) else sh._parse_arg(eps, "f")
    if eps_value is None:
        eps_value = float(torch.finfo(torch.float32).eps)
    mean = g.op("ReduceMean", g.op("Mul", x, x), axes_i=list(range(-len(dims), 0)), keepdims_i=1)
    eps_c = g.op("Constant", value_t=torch.tensor(eps_value, dtype=torch.float32))
    y = g.op("Div", x, g.op("Sqrt", g.op("Add", mean, eps_c)))
    return y if sh._is_none(weight) else g.op("Mul", y, weight)


_SYMBOLICS_REGISTERED = False


def _register_symbolics() -> None:
    global _SYMBOLICS_REGISTERED
    if not _SYMBOLICS_REGISTERED:
        torch.onnx.register_custom_op_symbolic("aten::rms_norm", _rms_norm_symbolic, OPSET)
        _SYMBOLICS_REGISTERED = True


def _export(module: nn.Module, args: tuple, path: Path, inputs, outputs, axes) -> None:
    _register_symbolics()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, str(path), input_names=inputs, output_names=outputs,
            dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )  # fmt: skip


def export_teacher(teacher, out: Path) -> dict[str, Any]:
    """``teacher.onnx`` + ``teacher_tokenizer.json``; returns the manifest entry."""
    st = getattr(teacher, "inner", teacher).model  # SentenceTransformer
    first = st[0]
    transformer = first.auto_model.eval()
    folder = Path(teacher.spec.locate()) if hasattr(teacher, "spec") else None
    tok_src = folder / "tokenizer.json" if folder else None
    if tok_src is None or not tok_src.is_file():
        raise FileNotFoundError(f"teacher {teacher.id}: no tokenizer.json to export")
    (out / "teacher_tokenizer.json").write_bytes(tok_src.read_bytes())
    use_types = "token_type_ids" in first.tokenizer.model_input_names
    enc = first.tokenizer(
        ["an example", "a longer example sentence"], padding=True, return_tensors="pt"
    )
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if use_types else [])
    args = tuple(enc[n] for n in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
    _export(
        TeacherPooled(transformer, use_types),
        args,
        out / "teacher.onnx",
        names,
        ["embedding"],
        axes,
    )
    _weights_outside(out / "teacher.onnx", TEACHER_WEIGHTS)
    return {
        "id": teacher.id,
        "dim": int(teacher.dim),
        "max_seq_length": int(getattr(first, "max_seq_length", 256) or 256),
        "inputs": names,
        "pad_id": int(first.tokenizer.pad_token_id or 0),
        "external_data": TEACHER_WEIGHTS,
    }


TEACHER_WEIGHTS = "teacher.onnx.data"


def _weights_outside(path: Path, data_name: str) -> None:
    """Move a graph's weights to ``data_name`` beside it (ONNX external data): onnxruntime
    then maps them from the file instead of parsing a second in-memory copy, which cut the
    teacher session's peak RSS from 204 to 137 MB here, with identical embeddings."""
    import onnx

    model = onnx.load(str(path))
    (path.parent / data_name).unlink(missing_ok=True)  # onnx appends to an existing file
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data_name, size_threshold=1024)  # fmt: skip


class CoreActivity(nn.Module):
    """A lattice core with its activity output: ``(answer_emb, activity)``."""

    def __init__(self, core: nn.Module):
        super().__init__()
        self.core = core

    def forward(self, x: torch.Tensor):
        from celltext.inference.activity import activity_tensor

        out = self.core(x, return_activity=True)
        return out[0], activity_tensor(out)


def export_core(core: nn.Module, dim: int, out: Path) -> dict[str, Any]:
    """``core.onnx`` with a dynamic batch axis, and for lattice cores ``core_activity.onnx``
    (the web page's lattice view); returns the manifest entry."""
    from celltext.inference.activity import lattice_size, supports_activity

    x = torch.nn.functional.normalize(torch.randn(2, dim), dim=1)
    axes = {"question_emb": {0: "batch"}, "answer_emb": {0: "batch"}}
    _export(core.eval(), (x,), out / "core.onnx", ["question_emb"], ["answer_emb"], axes)
    if not supports_activity(core):
        return {"activity": False}
    _export(CoreActivity(core), (x,), out / "core_activity.onnx", ["question_emb"],
            ["answer_emb", "activity"], axes | {"activity": {0: "batch"}})  # fmt: skip
    size = lattice_size(core)
    return {"activity": True, "lattice_size": None if size is None else list(size)}


def export_decoder(decoder: nn.Module, dim: int, out: Path) -> dict[str, Any]:
    """Prefill (plain, and with a prototype for editing decoders) + step; returns the
    manifest entry. Every decoder's state is NamedTuple caches, so every decoder exports."""
    decoder = decoder.eval()
    emb = torch.nn.functional.normalize(torch.randn(2, dim), dim=1)
    spec = state_spec(decoder)
    names = [n for layer in spec for n in layer["names"]]
    dyn = {
        n: {0: "batch", 2: "past"} if layer["kind"] == "KVCache" else {0: "batch"}
        for layer in spec
        for n in layer["names"]
    }
    prefill = DecoderPrefill(decoder)
    first = prefill(emb)
    out_axes = {"emb": {0: "batch"}, "logits": {0: "batch"}, **dyn}
    _export(prefill, (emb,), out / "decoder_prefill.onnx", ["emb"], ["logits", *names], out_axes)
    edits = bool(decoder.edits)
    info: dict[str, Any] = {"mode": "step", "state": spec, "n_prefix": int(decoder.cfg.n_prefix)}
    info |= {"edits": edits}
    if edits:
        width = int(decoder.cfg.max_proto_tokens)
        proto = torch.randint(3, decoder.cfg.vocab_size, (2, width))  # (B, P)
        _export(prefill, (emb, proto), out / "decoder_prefill_edit.onnx", ["emb", "proto_ids"],
                ["logits", *names], out_axes | {"proto_ids": {0: "batch"}})  # fmt: skip
        info["max_proto_tokens"] = width
        if all(layer["kind"] == "KVCache" for layer in spec):  # cut back by slicing (keep)
            block = torch.full((2, VERIFY_TRACE_TOKENS), decoder.cfg.bos_id, dtype=torch.long)
            block_axes = out_axes | {"proto_ids": {0: "batch"},
                                     "block_ids": {0: "batch", 1: "tokens"},
                                     "logits": {0: "batch", 1: "tokens"}}  # fmt: skip
            _export(DecoderPrefillBlock(decoder), (emb, proto, block),
                    out / "decoder_prefill_block.onnx", ["emb", "proto_ids", "block_ids"],
                    ["logits", *names], block_axes)  # fmt: skip
            info["prefill_block"] = True
    step_in = [f"in_{n}" for n in names]
    step_axes = {"input_ids": {0: "batch"}, "logits": {0: "batch"}}
    step_axes |= {f"in_{n}": dyn[n] for n in names} | dyn
    next_ids = first[0].argmax(-1, keepdim=True)  # (B, 1)
    _export(DecoderStep(decoder), (next_ids, *first[1:]), out / "decoder_step.onnx",
            ["input_ids", *step_in], ["logits", *names], step_axes)  # fmt: skip
    block = next_ids.repeat(1, VERIFY_TRACE_TOKENS)  # (B, L)
    verify_axes = step_axes | {"input_ids": {0: "batch", 1: "tokens"},
                               "logits": {0: "batch", 1: "tokens"}}  # fmt: skip
    _export(DecoderStep(decoder, block=True), (block, *first[1:]), out / "decoder_verify.onnx",
            ["input_ids", *step_in], ["logits", *names], verify_axes)  # fmt: skip
    info["verify"] = {"max_tokens": verify_max_tokens(decoder)}
    return info


def export_model(predictor, out: str | Path, teacher: str = "float32") -> dict[str, Any]:
    """Export a loaded :class:`~celltext.inference.predictor.Predictor` to ``out``, atomically
    (see :func:`~celltext.export.publish.staged_dir`): a killed export leaves ``out`` as it
    was, and a re-export writes fresh files instead of appending to the old
    ``teacher.onnx.data``. ``teacher``: ``float32`` (answers as PyTorch does) or ``int8``
    (:func:`~celltext.export.teacher_int8.quantize_export_teacher`; the selector fitted for
    it, ``selector_int8.json`` beside the checkpoint, where there is one)."""
    if predictor.retrieval_only:
        raise ValueError("the retrieval baseline has no network to export")
    if teacher not in TEACHER_PRECISIONS:
        raise ValueError(f"teacher must be one of {', '.join(TEACHER_PRECISIONS)}, not {teacher!r}")
    with staged_dir(out) as tmp:
        return _export_into(predictor, tmp, teacher)


def _export_into(predictor, out: Path, teacher: str) -> dict[str, Any]:
    start = time.perf_counter()
    system, tok = predictor.backend.system, predictor.backend.tokenizer
    teacher_info = export_teacher(predictor.teacher, out)
    if teacher == "int8":
        from celltext.export.teacher_int8 import quantize_export_teacher

        teacher_info = quantize_export_teacher(out, teacher_info)
    core_info = export_core(system.core, predictor.dim, out)
    decoder_info = export_decoder(system.decoder, predictor.dim, out)
    tok.save(out / "tokenizer.json")
    selector = _selector_for(predictor, teacher)
    if selector.fitted:
        selector.save(out / SELECTOR_FILE)
    if predictor.ranker is not None:
        predictor.ranker.save(out)
    decoder_info |= {"bos_id": tok.bos_id, "eos_id": tok.eos_id, "pad_id": tok.pad_id,
                     "vocab_size": tok.vocab_size}  # fmt: skip
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": predictor.info.to_dict(),
        "teacher": teacher_info,
        "core": core_info,
        "decoder": decoder_info,
        "predictor": predictor.config.to_dict(),
        "ranker": predictor.ranker is not None,
        "opset": OPSET,
        "torch": torch.__version__,
        "export_seconds": round(time.perf_counter() - start, 2),
    }
    return write_manifest(out, manifest)


def _selector_for(predictor, teacher: str):
    """The selector to export: the one fitted for ``teacher``'s precision beside the
    checkpoint (``selector_int8.json``), else the predictor's own (fitted on float32)."""
    from celltext.inference.selector import AnswerSelector

    if teacher == "float32":
        return predictor.selector
    path = Path(predictor.info.path or ".") / SELECTOR_FILES[teacher]
    if path.is_file():
        return AnswerSelector.load(path)
    log.warning("no %s beside the checkpoint: exporting the float32 teacher's selector", path.name)
    return predictor.selector


def build_export(ref: str | None = None, teacher: str = SERVED_TEACHER) -> Path:
    """The export of ``ref`` (default: the shipped model) with the ``teacher`` precision at
    :func:`~celltext.inference.loading.export_dir_for`, verified against its manifest before
    it is reused; built now (atomically, :func:`export_model`) if it is missing or broken."""
    from celltext.inference.export_files import ExportIntegrityError, verify_export
    from celltext.inference.factory import load_predictor
    from celltext.inference.loading import export_dir_for, resolve_ref

    out = export_dir_for(resolve_ref(ref), teacher)
    if out.exists():
        try:
            verify_export(out)
            return out
        except ExportIntegrityError as exc:
            log.warning("cached ONNX export is broken, rebuilding it: %s", exc)
    export_model(load_predictor(ref, fallback=False, backend="torch"), out, teacher)
    return out
