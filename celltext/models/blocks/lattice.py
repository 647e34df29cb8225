"""3D cellular lattice: X×Y×Z cells that share one cell prototype and talk to their neighbours.

Shape legend: B batch, X Y Z lattice sides, S cell state width, T steps, M neighbours
(6 faces, 18 faces+edges, 26 faces+edges+corners), H hidden width of the gated-MLP cell.

Each step every cell computes a message from its neighbours' states, a per-channel
weighted sum with one learned weight per (channel, direction)::

    m[c] = sum_{o in neighbourhood} w[c, o] * h_{cell + o}[c]   (+ drive on the front face)

and then updates its own state with the shared cell, ``h <- cell(h, m)``. The input (the
"drive", (B, X, Y, S)) is written onto the front face z = 0 at every step, so it keeps
flowing into the lattice; the output is read from the back face z = Z-1 (or the whole
lattice is handed on, as the hybrid core does). Boundaries are "zero" (cells outside the
lattice have state 0) or "periodic" (the lattice is a 3-torus).

The fast path is vectorised: the message is one depthwise ``conv3d`` whose 3×3×3 kernel is
zero outside the neighbourhood, and the cell runs on all cells at once as a batched matmul;
there is no Python loop over cells. :func:`lattice_reference` is the slow per-cell loop it is
tested against. The earlier prototype this replaces looped over cells in Python (50 s per
forward pass).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from celltext.config import Config, require


@dataclass
class LatticeConfig(Config):
    """A lattice of ``size`` cells with ``state_dim`` channels, updated ``steps`` times."""

    size: tuple[int, int, int] = (8, 8, 8)
    state_dim: int = 32
    neighbourhood: int = 6  # 6, 18 or 26
    steps: int = 4
    boundary: Literal["zero", "periodic"] = "zero"
    cell: Literal["gated_mlp", "gru"] = "gated_mlp"
    hidden_mult: float = 2.0  # gated-MLP hidden width = hidden_mult * state_dim

    def validate(self) -> None:
        require(all(s > 0 for s in self.size), "size", "every side must be > 0")
        require(self.state_dim > 0, "state_dim", "must be > 0")
        require(self.neighbourhood in (6, 18, 26), "neighbourhood", "must be 6, 18 or 26")
        require(self.steps > 0, "steps", "must be > 0")
        require(self.hidden_mult > 0, "hidden_mult", "must be > 0")


def neighbour_offsets(neighbourhood: int) -> list[tuple[int, int, int]]:
    """Offsets (dx, dy, dz) of the 6 / 18 / 26 neighbourhood (|dx|+|dy|+|dz| <= 1 / 2 / 3)."""
    reach = {6: 1, 18: 2, 26: 3}[neighbourhood]
    return [
        o
        for o in itertools.product((-1, 0, 1), repeat=3)
        if o != (0, 0, 0) and sum(map(abs, o)) <= reach
    ]


def serpentine_order(size: tuple[int, int, int]) -> torch.Tensor:
    """A locality-preserving visiting order of the cells: 3D boustrophedon, front to back.

    Returns a LongTensor (X*Y*Z,) of flat indices ``(x * Y + y) * Z + z``. Slices are visited
    from z = 0 (front face, where the input enters) to z = Z-1 (back face); each slice is
    walked as a snake over rows x (y forwards on even rows, backwards on odd ones), and odd
    slices walk the snake backwards, so any two consecutive cells are face neighbours.
    """
    nx, ny, nz = size
    snake = [
        (x, y) for x in range(nx) for y in (range(ny) if x % 2 == 0 else range(ny - 1, -1, -1))
    ]
    order = []
    for z in range(nz):
        for x, y in snake if z % 2 == 0 else reversed(snake):
            order.append((x * ny + y) * nz + z)
    return torch.tensor(order, dtype=torch.long)


class GatedMLPCell(nn.Module):
    """h' = h + σ(g) ⊙ (tanh(c) - h) with (c, g) = W2 SiLU(W1 [h, m]): a leaky gated update."""

    def __init__(self, state_dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(2 * state_dim, hidden)
        self.fc2 = nn.Linear(hidden, 2 * state_dim)

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """h, m: (..., S) -> (..., S)."""
        cand, gate = self.fc2(F.silu(self.fc1(torch.cat([h, m], dim=-1)))).chunk(2, dim=-1)
        return torch.lerp(h, torch.tanh(cand), torch.sigmoid(gate))


class GRUCell(nn.Module):
    """GRU update (Cho et al. 2014) with the message as input and the cell state as hidden."""

    def __init__(self, state_dim: int):
        super().__init__()
        self.ih = nn.Linear(state_dim, 3 * state_dim)
        self.hh = nn.Linear(state_dim, 3 * state_dim)

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """h, m: (..., S) -> (..., S)."""
        ir, iz, inn = self.ih(m).chunk(3, dim=-1)
        hr, hz, hn = self.hh(h).chunk(3, dim=-1)
        r = torch.sigmoid(ir + hr)
        z = torch.sigmoid(iz + hz)
        n = torch.tanh(inn + r * hn)
        return torch.lerp(n, h, z)  # (1 - z) * n + z * h


class LatticeOutput(NamedTuple):
    """Final cell states and, when asked for, the per-step activity map."""

    states: torch.Tensor  # (B, X, Y, Z, S)
    activity: torch.Tensor | None  # (B, T, X, Y, Z): L2 norm of each cell's state per step


class Lattice3D(nn.Module):
    """The lattice: shared cell, neighbour messages, front-face input, T steps."""

    def __init__(self, cfg: LatticeConfig):
        super().__init__()
        self.cfg = cfg
        s = cfg.state_dim
        offsets = neighbour_offsets(cfg.neighbourhood)
        # position of each offset inside a flattened 3x3x3 kernel
        kernel_index = [(dx + 1) * 9 + (dy + 1) * 3 + (dz + 1) for dx, dy, dz in offsets]
        self.offsets = offsets
        self.register_buffer("kernel_index", torch.tensor(kernel_index), persistent=False)
        # one weight per (channel, direction); starts as the neighbour mean
        self.message_weight = nn.Parameter(torch.full((s, len(offsets)), 1.0 / len(offsets)))
        if cfg.cell == "gru":
            self.cell: nn.Module = GRUCell(s)
        else:
            self.cell = GatedMLPCell(s, max(1, round(cfg.hidden_mult * s)))

    def message_kernel(self) -> torch.Tensor:
        """Depthwise conv3d weight (S, 1, 3, 3, 3), zero outside the neighbourhood."""
        s = self.cfg.state_dim
        w = self.message_weight
        kernel = w.new_zeros(s, 27).index_copy(1, self.kernel_index, w)  # (S, 27)
        return kernel.view(s, 1, 3, 3, 3)

    def messages(self, h: torch.Tensor) -> torch.Tensor:
        """Neighbour messages for every cell: h (B, X, Y, Z, S) -> (B, X, Y, Z, S)."""
        hc = rearrange(h, "b x y z s -> b s x y z")
        pad = (1, 1, 1, 1, 1, 1)
        if self.cfg.boundary == "periodic":
            hc = F.pad(hc, pad, mode="circular")  # (B, S, X+2, Y+2, Z+2)
        else:
            hc = F.pad(hc, pad)
        m = F.conv3d(hc, self.message_kernel(), groups=self.cfg.state_dim)  # (B, S, X, Y, Z)
        return rearrange(m, "b s x y z -> b x y z s")

    def forward(self, drive: torch.Tensor, return_activity: bool = False) -> LatticeOutput:
        """Run ``steps`` updates from a zero state with ``drive`` on the front face (B, X, Y,
        S), or on the first ``Zd`` slices (B, X, Y, Zd, S): the hybrid core's
        ``drive_slices`` writes its tokens onto every slice, so no slice idles."""
        cfg = self.cfg
        nx, ny, nz = cfg.size
        if drive.dim() == 4:
            drive = drive.unsqueeze(3)  # (B, X, Y, 1, S)
        if (
            drive.dim() != 5
            or tuple(drive.shape[1:3]) != (nx, ny)
            or not 1 <= drive.shape[3] <= nz
            or drive.shape[4] != cfg.state_dim
        ):
            raise ValueError(
                f"lattice drive must have shape (B, {nx}, {ny}, {cfg.state_dim}) or "
                f"(B, {nx}, {ny}, Zd <= {nz}, {cfg.state_dim}), got {tuple(drive.shape)}"
            )
        # the drive on its slices, zeros behind them: (B, X, Y, Z, S)
        front = F.pad(drive, (0, 0, 0, nz - drive.shape[3]))
        h = drive.new_zeros(drive.shape[0], nx, ny, nz, cfg.state_dim)
        activity = []
        for _ in range(cfg.steps):
            h = self.cell(h, self.messages(h) + front)
            if return_activity:
                activity.append(h.detach().norm(dim=-1))  # (B, X, Y, Z)
        act = torch.stack(activity, dim=1) if return_activity else None
        return LatticeOutput(h, act)

    @staticmethod
    def back_face(states: torch.Tensor) -> torch.Tensor:
        """The output face z = Z-1: (B, X, Y, Z, S) -> (B, X, Y, S)."""
        return states[:, :, :, -1]


@torch.no_grad()
def lattice_reference(lattice: Lattice3D, drive: torch.Tensor) -> torch.Tensor:
    """Slow per-cell loop computing what :meth:`Lattice3D.forward` computes (for tests only)."""
    cfg = lattice.cfg
    nx, ny, nz = cfg.size
    periodic = cfg.boundary == "periodic"
    w = lattice.message_weight  # (S, M)
    h = drive.new_zeros(drive.shape[0], nx, ny, nz, cfg.state_dim)
    for _ in range(cfg.steps):
        new = torch.empty_like(h)
        for x, y, z in itertools.product(range(nx), range(ny), range(nz)):
            m = torch.zeros_like(h[:, 0, 0, 0])  # (B, S)
            for o, (dx, dy, dz) in enumerate(lattice.offsets):
                px, py, pz = x + dx, y + dy, z + dz
                if periodic:
                    px, py, pz = px % nx, py % ny, pz % nz
                elif not (0 <= px < nx and 0 <= py < ny and 0 <= pz < nz):
                    continue
                m = m + w[:, o] * h[:, px, py, pz]
            if z == 0:
                m = m + drive[:, x, y]
            new[:, x, y, z] = lattice.cell(h[:, x, y, z], m)
        h = new
    return h
