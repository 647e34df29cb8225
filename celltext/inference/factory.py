"""``load_predictor(ref)``: the one way to get a predictor for a model reference.

A checkpoint directory, ``name@alias``, ``name/version``, ``None`` (the shipped default) or
``retrieval`` gives the :class:`~celltext.inference.predictor.Predictor` with PyTorch stages
(:class:`~celltext.inference.torch_backend.TorchBackend`); an ONNX export directory gives
the same predictor with onnxruntime stages
(:class:`~celltext.inference.onnx_backend.OrtBackend`, no torch imported). A checkpoint
whose export has been built (``celltext export onnx``, ``make demo``) is answered through
that export too, unless ``backend="torch"``; if that export no longer loads (a damaged
file fails its manifest hash), PyTorch answers and a warning says how to rebuild it.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celltext.index import RetrievalIndex
from celltext.inference.loading import choose_backend, is_onnx_export, load_bank, load_components
from celltext.inference.options import PredictorConfig
from celltext.inference.predictor import Predictor

log = logging.getLogger(__name__)


def load_predictor(
    ref: str | None = None,
    fallback: bool = True,
    threshold: float | None = None,
    config: PredictorConfig | None = None,
    teacher: Any = None,
    bank: RetrievalIndex | None = None,
    threads: int = 1,
    backend: str | None = None,
) -> Predictor:
    """Load the model ``ref`` with its teacher and phrase bank (see the module docstring).

    ``fallback`` and ``threshold`` override ``config`` (default: an export's own options,
    else :class:`PredictorConfig`'s); ``teacher`` and ``bank`` reuse already loaded ones
    (the service's hot reload, evaluation); ``threads``: onnxruntime's intra-op threads for
    an export (torch uses its own setting); ``backend``: ``auto`` (default, or
    ``$CELLTEXT_BACKEND``), ``torch`` or ``onnx`` (see
    :func:`~celltext.inference.loading.choose_backend`).
    """
    overrides: dict[str, Any] = {"fallback": {"enabled": fallback}}
    if threshold is not None:
        overrides["quality"] = {"threshold": threshold}
    cfg = (config or PredictorConfig()).replace(**overrides)
    kind, folder = choose_backend(ref, backend)
    if kind == "torch":
        return Predictor.from_parts(load_components(ref, cfg, teacher=teacher, bank=bank), cfg)

    from celltext.inference.export_files import ExportIntegrityError, read_manifest
    from celltext.inference.onnx_backend import load_export  # onnxruntime only when used

    try:
        with ThreadPoolExecutor(1) as pool:  # a cached bank loads while the sessions open
            pending = None
            if bank is None and cfg.fallback.enabled:
                teacher_id = read_manifest(folder)["teacher"]["id"]
                pending = pool.submit(_load_bank, teacher_id, cfg)
            parts = load_export(folder, threads=threads)
            bank = bank if pending is None else pending.result()
    except (ExportIntegrityError, OSError, KeyError, ValueError) as exc:
        if not _export_chosen_for_the_caller(ref, backend):
            raise
        log.warning(
            "the built ONNX export %s does not load (%s); answering with PyTorch until it is "
            "rebuilt (`celltext export onnx`)", folder, exc,
        )  # fmt: skip
        return Predictor.from_parts(load_components(ref, cfg, teacher=teacher, bank=bank), cfg)
    if config is None:  # the export's own options, with this call's overrides
        cfg = parts.config.replace(**overrides)
    if bank is None and cfg.fallback.enabled:
        bank = load_bank(parts.teacher, cfg, required=False)
    parts.bank = bank
    return Predictor.from_parts(parts, cfg)


def _load_bank(teacher_id: str, cfg: PredictorConfig) -> RetrievalIndex | None:
    """The cached phrase bank of ``cfg`` (None if not built yet), with its speller built when
    it will be used: both off the caller's thread, while the export's sessions open."""
    bank = load_bank(teacher_id, cfg, required=False, build=False)
    if bank is not None and cfg.bank.spelling:
        bank.speller  # noqa: B018 -- built now, not on the first answer
    return bank


def _export_chosen_for_the_caller(ref: str | None, backend: str | None) -> bool:
    """Whether the export was picked by ``auto`` for a checkpoint (so PyTorch may stand in
    for a damaged one), not named by the caller (an export folder, ``--backend onnx``)."""
    backend = backend or os.environ.get("CELLTEXT_BACKEND") or "auto"
    return backend == "auto" and not (ref is not None and is_onnx_export(ref))
