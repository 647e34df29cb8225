"""The hybrid core's ``drive_slices``: the tokens drive every lattice slice."""

import pytest
import torch

from celltext.config import ConfigError
from celltext.models.blocks.lattice import Lattice3D, LatticeConfig
from celltext.models.cores.hybrid import HybridCCTMambaConfig, HybridCCTMambaCore


def _core(drive_slices: int) -> HybridCCTMambaCore:
    cfg = HybridCCTMambaConfig.from_dict({
        "dim": 32, "cct": {"image_size": [4, 4], "in_channels": 2, "dim": 16, "n_layers": 1,
                           "n_heads": 2},
        "lattice": {"size": [2, 2, 4], "state_dim": 8, "steps": 2},
        "mamba": {"n_layers": 1, "d_state": 4}, "drive_slices": drive_slices,
    })  # fmt: skip
    torch.manual_seed(0)
    return HybridCCTMambaCore(cfg).eval()


def _slice_spread(core) -> torch.Tensor:
    """Per slice z, the spread over inputs of the last step's mean cell activity."""
    torch.manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(16, 32), dim=1)
    with torch.no_grad():
        _, act = core(x, return_activity=True)  # (B, T, X, Y, Z)
    return act[:, -1].mean(dim=(1, 2)).std(dim=0)  # (Z,)


def test_every_slice_varies_with_the_input_when_driven():
    spread = _slice_spread(_core(4))
    assert (spread > 1e-3).all(), spread


def test_front_face_drive_reaches_only_as_far_as_the_steps():
    """With the front face alone and 2 steps, slices z >= 2 never hear of the input."""
    spread = _slice_spread(_core(1))
    assert spread[0] > 1e-3 and (spread[2:] == 0).all(), spread


def test_lattice_takes_a_drive_per_slice_and_checks_its_shape():
    lat = Lattice3D(LatticeConfig(size=(2, 2, 3), state_dim=4, steps=1))
    assert lat(torch.randn(1, 2, 2, 4)).states.shape == (1, 2, 2, 3, 4)
    assert lat(torch.randn(1, 2, 2, 3, 4)).states.shape == (1, 2, 2, 3, 4)
    with pytest.raises(ValueError, match="drive must have shape"):
        lat(torch.randn(1, 2, 2, 4, 4))  # more slices than the lattice has


def test_drive_slices_must_fit_the_lattice():
    with pytest.raises(ConfigError, match="drive_slices"):
        _core(5)
