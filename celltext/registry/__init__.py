"""Checkpoints (safetensors + JSON, hashed, atomic) and the MLflow-backed model registry."""

from celltext.registry.checkpoint import (
    Checkpoint,
    CheckpointIntegrityError,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from celltext.registry.resolve import resolve_model_ref

__all__ = [
    "Checkpoint",
    "CheckpointIntegrityError",
    "load_checkpoint",
    "resolve_model_ref",
    "save_checkpoint",
    "verify_checkpoint",
]
