"""``load_predictor(ref)``: the one way to get a predictor for a model reference.

A checkpoint directory, ``name@alias``, ``name/version``, ``None`` (the shipped default) or
``retrieval`` gives the PyTorch :class:`~celltext.inference.predictor.Predictor`; an ONNX
export directory gives the onnxruntime
:class:`~celltext.inference.onnx_backend.OrtPredictor`. Both answer through the same
``answer(questions)`` interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celltext.inference.fallback import FallbackBank
from celltext.inference.loading import is_onnx_export, load_components
from celltext.inference.predictor import Predictor
from celltext.inference.records import PredictorConfig

if TYPE_CHECKING:
    from celltext.inference.onnx_backend import OrtPredictor


def load_predictor(
    ref: str | None = None,
    fallback: bool = True,
    threshold: float | None = None,
    config: PredictorConfig | None = None,
    teacher: Any = None,
    bank: FallbackBank | None = None,
) -> Predictor | OrtPredictor:
    """Load the model ``ref`` with its teacher and phrase bank (see the module docstring).

    ``fallback`` and ``threshold`` override ``config``; ``teacher`` and ``bank`` reuse
    already loaded ones (the service's hot reload, evaluation).
    """
    cfg = config or PredictorConfig()
    overrides: dict[str, Any] = {"fallback": fallback}
    if threshold is not None:
        overrides["threshold"] = threshold
    cfg = cfg.replace(**overrides)
    if ref is not None and is_onnx_export(ref):
        from celltext.inference.onnx_backend import OrtPredictor  # onnxruntime only when used

        ort_bank = bank if bank is not None else ("release" if cfg.fallback else None)
        return OrtPredictor.from_dir(ref, cfg.fallback, cfg.threshold, bank=ort_bank)
    return Predictor(config=cfg, **load_components(ref, cfg, teacher=teacher, bank=bank))
