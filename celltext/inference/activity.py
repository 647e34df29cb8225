"""Lattice activity for the web page: how strongly each cell of the 3D lattice fired.

Cores with a lattice (``hybrid_cct_mamba``, ``lattice3d``) accept ``return_activity=True``
and return ``(embedding, activity)``. The activity tensor's layout differs between cores
(a channel axis, a step axis); here it is reduced to one non-negative value per cell,
shape (X, Y, Z), by the mean absolute value over every non-spatial axis, then scaled to
0..1 for display. Cores without the flag (``mlp``, ``cct``, ``mamba``) give ``None``.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


def supports_activity(core) -> bool:
    """Whether ``core.forward`` takes ``return_activity``."""
    try:
        params = inspect.signature(core.forward).parameters
    except (TypeError, ValueError):
        return False
    return "return_activity" in params


def lattice_size(core) -> tuple[int, int, int] | None:
    """The lattice (X, Y, Z) from the core's config (its ``lattice`` sub-config), if any."""
    lattice = getattr(getattr(core, "cfg", None), "lattice", None)
    size = getattr(lattice, "size", None)
    return tuple(int(v) for v in size) if size is not None else None  # type: ignore[return-value]


def reduce_activity(act: np.ndarray, size: tuple[int, int, int] | None) -> np.ndarray:
    """Mean |activity| over non-spatial axes of one item's activity -> (X, Y, Z)."""
    a = np.abs(np.asarray(act, dtype=np.float32))
    if size is not None:
        axes = _spatial_axes(a.shape, size)
        if axes is not None:
            other = tuple(i for i in range(a.ndim) if i not in axes)
            a = a.mean(axis=other) if other else a
            return np.transpose(a, np.argsort(np.argsort(axes)))  # (X, Y, Z) in order
    if a.ndim < 3:
        raise ValueError(f"activity of shape {a.shape} has no 3 spatial axes")
    # without a known size: the three largest trailing-or-leading axes are spatial;
    # take the last three and average the rest (layout (..., X, Y, Z))
    while a.ndim > 3:
        a = a.mean(axis=0)
    return a


def _spatial_axes(shape: tuple[int, ...], size: tuple[int, int, int]) -> tuple[int, ...] | None:
    """Indices of the axes that match ``size`` in order (first match from the right)."""
    for start in range(len(shape) - 3, -1, -1):
        if tuple(shape[start : start + 3]) == tuple(size):
            return (start, start + 1, start + 2)
    return None


def lattice_activity(core, q_emb: np.ndarray) -> dict[str, Any] | None:
    """Activity of ``core`` for one question embedding (1, D), ready for JSON."""
    if not supports_activity(core):
        return None
    import torch

    with torch.inference_mode():
        out = core(
            torch.from_numpy(np.ascontiguousarray(q_emb, dtype=np.float32)), return_activity=True
        )
    act = activity_tensor(out)
    if act is None:
        return None
    return activity_record(act.detach().float().cpu().numpy()[0], lattice_size(core))


def activity_tensor(out: Any) -> Any:
    """The activity part of a ``return_activity=True`` core output (a tensor), or None."""
    act = out[1] if isinstance(out, (tuple, list)) else getattr(out, "activity", None)
    if isinstance(act, dict):
        act = act.get("activity", act.get("cells"))
    return act


def activity_record(act: np.ndarray, size: tuple[int, int, int] | None) -> dict[str, Any]:
    """One item's activity -> the JSON record of the web page (values scaled to 0..1)."""
    cells = reduce_activity(act, size)  # (X, Y, Z)
    peak = float(cells.max()) if cells.size else 0.0
    scaled = cells / peak if peak > 0 else cells
    return {
        "shape": list(cells.shape),
        "values": np.round(scaled, 4).tolist(),  # values[x][y][z] in 0..1
        "max": peak,
        "mean": float(cells.mean()) if cells.size else 0.0,
    }
