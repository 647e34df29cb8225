"""The loader of celltext's MLflow models (``python_function`` flavour, ``loader_module``).

An MLflow model written by :func:`celltext.registry.pyfunc.save_pyfunc_model` names this
module in its ``MLmodel`` file and carries the checkpoint as its data. MLflow calls
:func:`_load_pyfunc` with that directory (``mlflow models predict``/``serve``,
``mlflow.pyfunc.load_model``); the returned model answers through
:func:`celltext.inference.factory.load_predictor`, so answers are exactly those of
``celltext ask`` and the HTTP service. ``model_config={"fallback": False}`` turns the
phrase-bank fallback off (which also skips building the bank from the release).
"""

from __future__ import annotations

from typing import Any

from celltext.inference.factory import load_predictor
from celltext.inference.predictor import Predictor

OUTPUT_COLUMNS = ("answer", "confidence", "fallback", "provenance", "model")


def questions_of(model_input: Any) -> list[str]:
    """Questions from a DataFrame (``question`` column, else the first), a dict or a list."""
    if hasattr(model_input, "columns"):
        column = "question" if "question" in model_input.columns else model_input.columns[0]
        return [str(q) for q in model_input[column].tolist()]
    if isinstance(model_input, dict):
        value = model_input.get("question", next(iter(model_input.values()), []))
        return [str(value)] if isinstance(value, str) else [str(q) for q in value]
    if isinstance(model_input, str):
        return [model_input]
    return [str(q) for q in model_input]


class PredictorModel:
    """What MLflow's pyfunc wrapper calls: ``predict(model_input) -> DataFrame``."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def predict(self, model_input: Any, params: dict[str, Any] | None = None):
        import pandas as pd

        rows = self.predictor.answer(questions_of(model_input))
        return pd.DataFrame(
            [{k: getattr(r, k) for k in OUTPUT_COLUMNS} for r in rows],
            columns=list(OUTPUT_COLUMNS),
        )


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> PredictorModel:
    """MLflow's entry point: the model whose checkpoint is at ``data_path``."""
    config = dict(model_config or {})
    fallback = bool(config.pop("fallback", True))
    return PredictorModel(load_predictor(data_path, fallback=fallback))
