"""3D lattice: vectorised update = per-cell reference; scan order; locality."""

from __future__ import annotations

import pytest
import torch

from celltext.config import ConfigError
from celltext.models.blocks.lattice import (
    Lattice3D,
    LatticeConfig,
    lattice_reference,
    neighbour_offsets,
    serpentine_order,
)


def _lattice(**kw) -> Lattice3D:
    cfg = LatticeConfig(**{"size": (3, 3, 3), "state_dim": 4, "steps": 3, **kw})
    lattice = Lattice3D(cfg).double()
    with torch.no_grad():  # distinct weight per direction, so a mixed-up offset shows
        lattice.message_weight.normal_()
    return lattice


@pytest.mark.parametrize("cell", ["gated_mlp", "gru"])
@pytest.mark.parametrize("boundary", ["zero", "periodic"])
@pytest.mark.parametrize("neighbourhood", [6, 18, 26])
def test_matches_per_cell_reference(neighbourhood, boundary, cell):
    lattice = _lattice(neighbourhood=neighbourhood, boundary=boundary, cell=cell)
    drive = torch.randn(2, 3, 3, 4, dtype=torch.float64)
    out = lattice(drive)
    torch.testing.assert_close(out.states, lattice_reference(lattice, drive))
    assert out.activity is None


@pytest.mark.parametrize("boundary", ["zero", "periodic"])
def test_matches_reference_on_a_non_cubic_lattice(boundary):
    lattice = _lattice(size=(2, 3, 4), neighbourhood=26, boundary=boundary, steps=2)
    drive = torch.randn(2, 2, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(lattice(drive).states, lattice_reference(lattice, drive))


def test_neighbour_offsets():
    for n in (6, 18, 26):
        offsets = neighbour_offsets(n)
        assert len(offsets) == n == len(set(offsets))
        assert (0, 0, 0) not in offsets


def test_information_moves_one_cell_per_step():
    lattice = _lattice(size=(3, 3, 5), steps=2, neighbourhood=26)
    drive = torch.randn(1, 3, 3, 4, dtype=torch.float64)
    a = lattice(drive).states
    b = lattice(drive + 1.0).states
    changed = (a - b).abs().amax(dim=(0, 1, 2, 4))  # per z slice
    assert (changed[:2] > 0).all()  # slices 0 and 1 see the drive after 2 steps
    assert (changed[2:] == 0).all()  # slices 2.. do not yet


def test_activity_map():
    lattice = _lattice(steps=4)
    out = lattice(torch.randn(2, 3, 3, 4, dtype=torch.float64), return_activity=True)
    assert out.activity.shape == (2, 4, 3, 3, 3)
    torch.testing.assert_close(out.activity[:, -1], out.states.norm(dim=-1))


@pytest.mark.parametrize("size", [(3, 4, 5), (2, 2, 2), (1, 3, 2), (8, 8, 8)])
def test_serpentine_order_is_a_local_permutation(size):
    order = serpentine_order(size)
    nx, ny, nz = size
    assert sorted(order.tolist()) == list(range(nx * ny * nz))
    z = order % nz
    y = (order // nz) % ny
    x = order // (ny * nz)
    steps = (x.diff().abs() + y.diff().abs() + z.diff().abs()).tolist()
    assert all(s == 1 for s in steps)  # consecutive cells are face neighbours
    assert z[: nx * ny].eq(0).all() and z[-nx * ny :].eq(nz - 1).all()  # front first, back last


def test_bad_drive_shape_names_expected_shape():
    lattice = _lattice()
    with pytest.raises(ValueError, match=r"\(B, 3, 3, 4\)"):
        lattice(torch.randn(2, 3, 4, 4, dtype=torch.float64))


def test_config_validation():
    with pytest.raises(ConfigError, match="neighbourhood"):
        LatticeConfig(neighbourhood=8)
    with pytest.raises(ConfigError, match="size"):
        LatticeConfig(size=(0, 2, 2))
    with pytest.raises(ConfigError, match="boundary"):
        LatticeConfig(boundary="reflect")
