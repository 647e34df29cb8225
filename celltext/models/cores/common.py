"""Parts shared by the cores: the input check, embedding -> map / face projections, the
lattice + Mamba stage and its config fields, the front-face / back-face core, and the
residual output head.

Shape legend: B batch, D teacher embedding width (``cfg.dim``), C H W spatial map,
X Y Z lattice sides, S lattice state width, L = X*Y*Z cells, F pooled feature width.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from einops import rearrange

from celltext.config import require
from celltext.models.blocks.lattice import Lattice3D, LatticeConfig, serpentine_order
from celltext.models.blocks.mamba import MambaConfig, MambaLayer
from celltext.models.blocks.norms import RMSNorm


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


class LatticeMambaFields:
    """Mixin of the configs whose core has a :class:`LatticeMambaStage` (hybrid, ``mamba_v1``).

    The config dataclass itself declares the fields, in its own order: ``lattice_size``,
    ``lattice_state``, ``lattice_steps``, ``neighbourhood``, ``boundary``, ``cell``,
    ``cell_hidden_mult``, ``mamba_layers``, ``d_state``, ``expand`` and ``bidirectional``.
    """

    def validate_lattice_mamba(self) -> None:
        """Raise ConfigError naming this config's lattice or Mamba field if one is invalid."""
        require(all(s > 0 for s in self.lattice_size), "lattice_size", "every side must be > 0")
        require(self.lattice_state > 0, "lattice_state", "must be > 0")
        require(self.lattice_steps > 0, "lattice_steps", "must be > 0")
        require(self.neighbourhood in (6, 18, 26), "neighbourhood", "must be 6, 18 or 26")
        require(self.cell_hidden_mult > 0, "cell_hidden_mult", "must be > 0")
        require(self.mamba_layers >= 0, "mamba_layers", "must be >= 0")
        require(self.d_state > 0, "d_state", "must be > 0")
        require(self.expand > 0, "expand", "must be > 0")

    def lattice_config(self) -> LatticeConfig:
        """The lattice in front of the Mamba layers."""
        return LatticeConfig(
            size=self.lattice_size,
            state_dim=self.lattice_state,
            neighbourhood=self.neighbourhood,
            steps=self.lattice_steps,
            boundary=self.boundary,
            cell=self.cell,
            hidden_mult=self.cell_hidden_mult,
        )


class LatticeMambaStage(nn.Module):
    """Front-face drive -> lattice steps -> Mamba over the serpentine cell order -> states.

    The cells are visited in :func:`serpentine_order` (front slice first, consecutive cells
    always face neighbours), so a causal scan reaches the back face last, after every other
    cell. With ``bidirectional`` a second Mamba stack reads the reversed order and the two are
    averaged. Mamba outputs are scattered back to the lattice layout.
    """

    def __init__(
        self,
        lattice: LatticeConfig,
        n_mamba: int,
        d_state: int,
        expand: int,
        bidirectional: bool = False,
    ):
        super().__init__()
        self.lattice = Lattice3D(lattice)
        mcfg = MambaConfig(d_model=lattice.state_dim, d_state=d_state, expand=expand)
        self.forward_layers = nn.ModuleList(MambaLayer(mcfg) for _ in range(n_mamba))
        self.backward_layers = (
            nn.ModuleList(MambaLayer(mcfg) for _ in range(n_mamba)) if bidirectional else None
        )
        order = serpentine_order(lattice.size)
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse", torch.argsort(order), persistent=False)

    @classmethod
    def from_config(cls, cfg: LatticeMambaFields) -> LatticeMambaStage:
        """The stage described by a config with the :class:`LatticeMambaFields`."""
        return cls(
            cfg.lattice_config(), cfg.mamba_layers, cfg.d_state, cfg.expand, cfg.bidirectional
        )

    def forward(
        self, drive: torch.Tensor, return_activity: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """drive: (B, X, Y, S) -> states (B, X, Y, Z, S) after Mamba, activity or None."""
        states, activity = self.lattice(drive, return_activity=return_activity)
        nx, ny, nz = self.lattice.cfg.size
        seq = rearrange(states, "b x y z s -> b (x y z) s").index_select(1, self.order)  # (B, L, S)
        out = seq
        for layer in self.forward_layers:
            out = layer(out)
        if self.backward_layers is not None:
            rev = seq.flip(1)
            for layer in self.backward_layers:
                rev = layer(rev)
            out = 0.5 * (out + rev.flip(1))
        out = out.index_select(1, self.inverse)  # back to row-major cell order: (B, L, S)
        return rearrange(out, "b (x y z) s -> b x y z s", x=nx, y=ny, z=nz), activity


class FaceCore(CoreModule):
    """Base of the cores that drive a lattice's front face and read out its back face.

    ``lattice3d_v1`` and ``mamba_v1`` differ only in :meth:`evolve` (the lattice alone, or
    the lattice then Mamba); each builds, in its ``__init__``, ``to_face`` (D -> X*Y*S), its
    lattice module, ``norm`` (RMSNorm over X*Y*S) and ``out`` (:class:`ResidualHead`).
    """

    to_face: nn.Linear
    norm: RMSNorm
    out: ResidualHead

    def evolve(
        self, drive: torch.Tensor, return_activity: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """drive: (B, X, Y, S) -> states (B, X, Y, Z, S), activity (B, T, X, Y, Z) or None."""
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, return_activity: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x: (B, dim) -> (B, dim); with ``return_activity`` also (B, T, X, Y, Z) cell norms."""
        self.check_input(x)
        nx, ny, _ = self.cfg.lattice_size
        drive = rearrange(self.to_face(x), "b (x y s) -> b x y s", x=nx, y=ny)  # (B, X, Y, S)
        states, activity = self.evolve(drive, return_activity)  # (B, X, Y, Z, S)
        face = rearrange(Lattice3D.back_face(states), "b x y s -> b (x y s)")  # (B, X*Y*S)
        out = self.out(self.norm(face), x)
        return (out, activity) if return_activity else out
