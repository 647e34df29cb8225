"""``mamba_v1``: the hybrid without the CCT: lattice + Mamba over the serpentine cell order.

Shape legend: B batch, D teacher width, X Y Z lattice, S cell state width, L = X*Y*Z.

::

    x (B, D) -> Linear -> drive (B, X, Y, S) on the front face
      -> Lattice3D (T steps) -> serpentine order -> MambaLayer x n (B, L, S) -> lattice layout
      -> back face (B, X, Y, S) -> flatten (B, X*Y*S) -> RMSNorm
      -> Linear (small init) + x -> (B, D)

The read-out is the flattened back face (as in ``lattice3d_v1``), not attention pooling,
so this core has no attention at all: the ablation isolates what the CCT adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn

from celltext.config import Config, require
from celltext.models.blocks.norms import RMSNorm
from celltext.models.cores.common import (
    FaceCore,
    LatticeMambaFields,
    LatticeMambaStage,
    ResidualHead,
)
from celltext.models.registry import register_model


@dataclass
class MambaCoreConfig(LatticeMambaFields, Config):
    """Lattice + Mamba core (same lattice and Mamba settings as the hybrid by default)."""

    dim: int = 384
    lattice_size: tuple[int, int, int] = (8, 8, 8)
    lattice_state: int = 32
    lattice_steps: int = 8  # = Z, so the input reaches every slice (one cell per step)
    neighbourhood: int = 6
    boundary: Literal["zero", "periodic"] = "zero"
    cell: Literal["gated_mlp", "gru"] = "gated_mlp"
    cell_hidden_mult: float = 1.0  # gated-MLP cell hidden width / lattice_state (CPU cost)
    mamba_layers: int = 2
    d_state: int = 8
    expand: int = 1  # Mamba inner width = expand * lattice_state (1 keeps the CPU scan cheap)
    bidirectional: bool = False
    skip: bool = True
    out_init_scale: float = 0.1  # initial correction norm (teacher embeddings have norm 1)

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")
        self.validate_lattice_mamba()


@register_model("mamba_v1", kind="core", config_cls=MambaCoreConfig)
class MambaCore(FaceCore):
    """Embedding -> front face -> lattice -> Mamba -> back face -> embedding."""

    def __init__(self, cfg: MambaCoreConfig):
        super().__init__(cfg)
        nx, ny, _ = cfg.lattice_size
        face = nx * ny * cfg.lattice_state
        self.to_face = nn.Linear(cfg.dim, face)
        self.stage = LatticeMambaStage.from_config(cfg)
        self.norm = RMSNorm(face)
        self.out = ResidualHead(face, cfg.dim, cfg.skip, cfg.out_init_scale)

    def evolve(
        self, drive: torch.Tensor, return_activity: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """drive: (B, X, Y, S) -> states (B, X, Y, Z, S) after the lattice and Mamba."""
        return self.stage(drive, return_activity)
