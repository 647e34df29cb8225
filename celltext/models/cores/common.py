"""Parts shared by the cores: the input check, the embedding -> map projection, the
lattice + Mamba stage and its Mamba config, and the residual output head.

Shape legend: B batch, D teacher embedding width (``cfg.dim``), C H W spatial map,
X Y Z lattice sides, S lattice state width, L = X*Y*Z cells, F pooled feature width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from einops import rearrange

from celltext.config import Config, require
from celltext.models.blocks.checkpointing import checkpointed
from celltext.models.blocks.lattice import Lattice3D, LatticeConfig, serpentine_order
from celltext.models.blocks.mamba import MambaConfig, MambaLayer


class CoreModule(nn.Module):
    """Base of every core: (B, dim) -> (B, dim), with a clear error on a wrong shape."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.dim = cfg.dim

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError naming the expected shape (B, dim) unless ``x`` has it."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__} expects embeddings of shape (batch, {self.dim}), got {got}"
            )
        if not x.is_floating_point():
            raise ValueError(
                f"{type(self).__name__} expects a floating-point tensor, got {x.dtype}"
            )


class EmbeddingToMap(nn.Module):
    """Learned projection of an embedding onto a spatial map: (B, D) -> (B, C, H, W)."""

    def __init__(self, dim: int, channels: int, size: tuple[int, int]):
        super().__init__()
        self.channels, self.size = channels, tuple(size)
        self.proj = nn.Linear(dim, channels * size[0] * size[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.size
        return rearrange(self.proj(x), "b (c h w) -> b c h w", c=self.channels, h=h, w=w)


def init_small_(linear: nn.Linear, scale: float) -> nn.Linear:
    """Initialise ``linear`` so that its output has norm about ``scale`` for unit-RMS inputs.

    Weights ~ N(0, scale^2 / (in * out)), bias 0: the output has out entries of variance
    in * scale^2 / (in * out), so a squared norm of about scale^2. Teacher embeddings have
    norm 1, so a core that adds this to its input starts within ~``scale`` of the identity.
    """
    nn.init.normal_(linear.weight, std=scale / math.sqrt(linear.in_features * linear.out_features))
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear


class ResidualHead(nn.Module):
    """Pooled (normalised) features (B, F) -> (B, D), added to the input embedding when ``skip``.

    The projection starts small (:func:`init_small_`), so a fresh core with ``skip`` is close
    to the identity map (the question embedding) and training moves it towards the answer
    embedding from there. Without ``skip`` it uses PyTorch's default initialisation.
    """

    def __init__(self, features: int, dim: int, skip: bool = True, init_scale: float = 0.1):
        super().__init__()
        self.skip = skip
        self.proj = nn.Linear(features, dim)
        if skip:
            init_small_(self.proj, init_scale)

    def forward(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """features: (B, F), x: (B, D) -> (B, D)."""
        out = self.proj(features)
        return x + out if self.skip else out


@dataclass
class MambaStackConfig(Config):
    """The Mamba layers that read the lattice's cells in serpentine order.

    Their width is the lattice's ``state_dim``; ``n_layers = 0`` leaves the lattice alone
    (``lattice3d_v2``). Field names follow :class:`~celltext.models.blocks.mamba.MambaConfig`.
    """

    n_layers: int = 2
    d_state: int = 8
    d_conv: int = 4
    expand: int = 1  # inner width = expand * lattice.state_dim (1 keeps the CPU scan cheap)
    bidirectional: bool = False  # a second stack reads the reversed order; outputs averaged

    def validate(self) -> None:
        require(self.n_layers >= 0, "n_layers", "must be >= 0")
        require(self.d_state > 0, "d_state", "must be > 0")
        require(self.d_conv > 0, "d_conv", "must be > 0")
        require(self.expand > 0, "expand", "must be > 0")

    def layer(self, d_model: int) -> MambaConfig:
        """The config of one layer of this stack over ``d_model``-wide states."""
        return MambaConfig(
            d_model=d_model, d_state=self.d_state, d_conv=self.d_conv, expand=self.expand
        )


class LatticeMambaStage(nn.Module):
    """Front-face drive -> lattice steps -> Mamba over the serpentine cell order -> states.

    The cells are visited in :func:`serpentine_order` (front slice first, consecutive cells
    always face neighbours), so a causal scan reaches the back face last, after every other
    cell. With ``bidirectional`` a second Mamba stack reads the reversed order and the two are
    averaged. Mamba outputs are scattered back to the lattice layout.
    """

    def __init__(self, lattice: LatticeConfig, mamba: MambaStackConfig):
        super().__init__()
        self.lattice = Lattice3D(lattice)
        layer = mamba.layer(lattice.state_dim)
        self.forward_layers = nn.ModuleList(MambaLayer(layer) for _ in range(mamba.n_layers))
        self.backward_layers = (
            nn.ModuleList(MambaLayer(layer) for _ in range(mamba.n_layers))
            if mamba.bidirectional and mamba.n_layers
            else None
        )
        order = serpentine_order(lattice.size)
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse", torch.argsort(order), persistent=False)

    def forward(
        self, drive: torch.Tensor, return_activity: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """drive: (B, X, Y, S) or (B, X, Y, Zd, S) -> states (B, X, Y, Z, S) after Mamba,
        activity or None."""
        states, activity = self.lattice(drive, return_activity=return_activity)
        if not self.forward_layers:
            return states, activity
        nx, ny, nz = self.lattice.cfg.size
        seq = rearrange(states, "b x y z s -> b (x y z) s").index_select(1, self.order)  # (B, L, S)
        out = seq
        for layer in self.forward_layers:
            out = checkpointed(layer, out)
        if self.backward_layers is not None:
            rev = seq.flip(1)
            for layer in self.backward_layers:
                rev = checkpointed(layer, rev)
            out = 0.5 * (out + rev.flip(1))
        out = out.index_select(1, self.inverse)  # back to row-major cell order: (B, L, S)
        return rearrange(out, "b (x y z) s -> b x y z s", x=nx, y=ny, z=nz), activity
