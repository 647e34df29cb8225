"""Checkpoints (safetensors + JSON, hashed, atomic) and the MLflow-backed model registry.

The names below are imported on first use (PEP 562), so ``celltext.registry.models`` and the
``celltext registry`` commands do not pay for torch unless they touch weights.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Checkpoint": "celltext.registry.checkpoint",
    "CheckpointIntegrityError": "celltext.registry.checkpoint",
    "load_checkpoint": "celltext.registry.checkpoint",
    "save_checkpoint": "celltext.registry.checkpoint",
    "verify_checkpoint": "celltext.registry.checkpoint",
    "resolve_model_ref": "celltext.registry.resolve",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'celltext.registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
