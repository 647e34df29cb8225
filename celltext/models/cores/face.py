"""Front-face / back-face cores: ``mamba_v1`` (lattice + Mamba) and ``lattice3d_v2`` (lattice).

Shape legend: B batch, D teacher width, X Y Z lattice, S cell state width (``lattice.state_dim``),
L = X*Y*Z cells, T lattice steps.

::

    x (B, D) -> Linear -> drive (B, X, Y, S) on the front face z = 0
      -> Lattice3D: T steps of the shared cell over neighbour messages  (B, X, Y, Z, S)
      -> serpentine order -> MambaLayer x mamba.n_layers (B, L, S) -> lattice layout
      -> back face z = Z-1 (B, X, Y, S) -> flatten (B, X*Y*S) -> RMSNorm
      -> Linear (small init) + x -> (B, D)

The two registered cores are one module with two default configs: ``lattice3d_v2`` is the
original cellular network the seeds measured (``mamba.n_layers = 0``); ``mamba_v1`` is the
hybrid without the CCT, so the ablation isolates what the CCT adds. The read-out is the
flattened back face, not attention pooling: neither has attention at all. Information moves
one cell per step, so ``lattice.steps`` should be at least Z for the input to reach the back
face; the defaults (8 steps on 8×8×8) are exactly that.

``lattice3d_v1`` (the lattice as ``lattice.*`` rather than ``stage.lattice.*``, and a flat
config) is retired; its checkpoints do not load into ``lattice3d_v2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from einops import rearrange

from celltext.config import Config, require
from celltext.models.blocks.lattice import Lattice3D, LatticeConfig
from celltext.models.blocks.norms import RMSNorm
from celltext.models.cores.common import (
    CoreModule,
    LatticeMambaStage,
    MambaStackConfig,
    ResidualHead,
)
from celltext.models.zoo import register_model


@dataclass
class FaceCoreConfig(Config):
    """Lattice + Mamba core (the hybrid's lattice and Mamba settings by default)."""

    dim: int = 384  # teacher embedding width
    lattice: LatticeConfig = field(
        default_factory=lambda: LatticeConfig(
            size=(8, 8, 8), state_dim=32, steps=8, hidden_mult=1.0
        )
    )
    mamba: MambaStackConfig = field(default_factory=MambaStackConfig)
    skip: bool = True  # add the correction to the input embedding
    out_init_scale: float = 0.1  # initial correction norm (teacher embeddings have norm 1)

    def validate(self) -> None:
        require(self.dim > 0, "dim", "must be > 0")


@dataclass
class Lattice3DCoreConfig(FaceCoreConfig):
    """Lattice-only core: no Mamba layers, a wider gated-MLP cell."""

    lattice: LatticeConfig = field(
        default_factory=lambda: LatticeConfig(
            size=(8, 8, 8), state_dim=16, steps=8, hidden_mult=2.0
        )
    )
    mamba: MambaStackConfig = field(default_factory=lambda: MambaStackConfig(n_layers=0))


class FaceCore(CoreModule):
    """Embedding -> front face -> lattice (-> Mamba) -> back face -> embedding."""

    def __init__(self, cfg: FaceCoreConfig):
        super().__init__(cfg)
        nx, ny, _ = cfg.lattice.size
        face = nx * ny * cfg.lattice.state_dim
        self.to_face = nn.Linear(cfg.dim, face)
        self.stage = LatticeMambaStage(cfg.lattice, cfg.mamba)
        self.norm = RMSNorm(face)
        self.out = ResidualHead(face, cfg.dim, cfg.skip, cfg.out_init_scale)

    def forward(
        self, x: torch.Tensor, return_activity: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x: (B, dim) -> (B, dim); with ``return_activity`` also (B, T, X, Y, Z) cell norms."""
        self.check_input(x)
        nx, ny, _ = self.cfg.lattice.size
        drive = rearrange(self.to_face(x), "b (x y s) -> b x y s", x=nx, y=ny)  # (B, X, Y, S)
        states, activity = self.stage(drive, return_activity)  # (B, X, Y, Z, S)
        face = rearrange(Lattice3D.back_face(states), "b x y s -> b (x y s)")  # (B, X*Y*S)
        out = self.out(self.norm(face), x)
        return (out, activity) if return_activity else out


register_model("mamba_v1", kind="core", config_cls=FaceCoreConfig)(FaceCore)
register_model("lattice3d_v2", kind="core", config_cls=Lattice3DCoreConfig)(FaceCore)
