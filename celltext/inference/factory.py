"""``load_predictor(ref)``: the one way to get a predictor for a model reference.

A checkpoint directory, ``name@alias``, ``name/version``, ``None`` (the shipped default) or
``retrieval`` gives the :class:`~celltext.inference.predictor.Predictor` with PyTorch stages
(:class:`~celltext.inference.torch_backend.TorchBackend`); an ONNX export directory gives
the same predictor with onnxruntime stages
(:class:`~celltext.inference.onnx_backend.OrtBackend`, no torch imported). A checkpoint
whose export has been built (``celltext export onnx``, ``make demo``) is answered through
that export too, unless ``backend="torch"``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from celltext.index import RetrievalIndex
from celltext.inference.loading import choose_backend, load_bank, load_components
from celltext.inference.predictor import Predictor
from celltext.inference.records import PredictorConfig


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

    ``fallback`` and ``threshold`` override ``config``; ``teacher`` and ``bank`` reuse
    already loaded ones (the service's hot reload, evaluation); ``threads``: onnxruntime's
    intra-op threads for an export (torch uses its own setting); ``backend``: ``auto``
    (default, or ``$CELLTEXT_BACKEND``), ``torch`` or ``onnx`` (see
    :func:`~celltext.inference.loading.choose_backend`).
    """
    cfg = config or PredictorConfig()
    overrides: dict[str, Any] = {"fallback": fallback}
    if threshold is not None:
        overrides["threshold"] = threshold
    cfg = cfg.replace(**overrides)
    kind, folder = choose_backend(ref, backend)
    if kind == "onnx":
        from celltext.inference.export_files import read_manifest
        from celltext.inference.onnx_backend import load_export  # onnxruntime only when used

        if bank is None and cfg.fallback:  # a cached bank before the sessions: a lower peak
            teacher_id = read_manifest(folder)["teacher"]["id"]
            bank = load_bank(SimpleNamespace(id=teacher_id), cfg, required=False, build=False)
        parts = load_export(folder, threads=threads)
        exported = parts.pop("config")
        if config is None:  # the export's own options, with this call's overrides
            cfg = exported.replace(**overrides)
        if bank is None and cfg.fallback:
            bank = load_bank(parts["teacher"], cfg, required=False)
        return Predictor(config=cfg, bank=bank, **parts)
    return Predictor(config=cfg, **load_components(ref, cfg, teacher=teacher, bank=bank))
