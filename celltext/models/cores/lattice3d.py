"""``lattice3d_v1``: the original cellular network, as the baseline the seeds measured.

Shape legend: B batch, D teacher width, X Y Z lattice, S cell state width, T steps.

::

    x (B, D) -> Linear -> drive (B, X, Y, S) on the front face z = 0
      -> Lattice3D: T steps of the shared cell over neighbour messages  (B, X, Y, Z, S)
      -> back face z = Z-1 (B, X, Y, S) -> flatten (B, X*Y*S) -> RMSNorm
      -> Linear (small init) + x -> (B, D)

Information moves one cell per step, so ``steps`` should be at least Z for the input to
reach the back face; the default (8 steps on 8×8×8) is exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn

from celltext.config import Config, require
from celltext.models.blocks.lattice import Lattice3D, LatticeConfig
from celltext.models.blocks.norms import RMSNorm
from celltext.models.cores.common import FaceCore, ResidualHead
from celltext.models.registry import register_model


@dataclass
class Lattice3DCoreConfig(Config):
    """Lattice-only core."""

    dim: int = 384
    lattice_size: tuple[int, int, int] = (8, 8, 8)
    state_dim: int = 16
    steps: int = 8
    neighbourhood: int = 6
    boundary: Literal["zero", "periodic"] = "zero"
    cell: Literal["gated_mlp", "gru"] = "gated_mlp"
    hidden_mult: float = 2.0
    skip: bool = True
    out_init_scale: float = 0.1  # initial correction norm (teacher embeddings have norm 1)

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")
        self.lattice_config()  # raises ConfigError naming the lattice field

    def lattice_config(self) -> LatticeConfig:
        """The lattice."""
        return LatticeConfig(
            size=self.lattice_size,
            state_dim=self.state_dim,
            neighbourhood=self.neighbourhood,
            steps=self.steps,
            boundary=self.boundary,
            cell=self.cell,
            hidden_mult=self.hidden_mult,
        )


@register_model("lattice3d_v1", kind="core", config_cls=Lattice3DCoreConfig)
class Lattice3DCore(FaceCore):
    """Embedding -> front face -> lattice steps -> back face -> embedding."""

    def __init__(self, cfg: Lattice3DCoreConfig):
        super().__init__(cfg)
        nx, ny, _ = cfg.lattice_size
        face = nx * ny * cfg.state_dim
        self.to_face = nn.Linear(cfg.dim, face)
        self.lattice = Lattice3D(cfg.lattice_config())
        self.norm = RMSNorm(face)
        self.out = ResidualHead(face, cfg.dim, cfg.skip, cfg.out_init_scale)

    def evolve(
        self, drive: torch.Tensor, return_activity: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """drive: (B, X, Y, S) -> states (B, X, Y, Z, S) after the lattice steps."""
        return self.lattice(drive, return_activity=return_activity)
