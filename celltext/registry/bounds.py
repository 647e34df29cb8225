"""Size bounds checked before a model is built from a checkpoint's config.

A checkpoint's hashes are self-attested: whoever ships a folder can make them match. So the
sizes in its ``config.json`` are untrusted input, and a crafted ``lattice.size: [2000, 2000,
2000]`` or ``vocab_size: 400000000`` would otherwise allocate gigabytes before anything
fails. :func:`check_system_bounds` refuses, naming the field, (1) any integer of the core or
decoder config over :data:`MAX_FIELD`, (2) a lattice over :data:`MAX_LATTICE_CELLS` cells, a
vocabulary over :data:`MAX_VOCAB`, a width over :data:`MAX_DIM`, and then (3) builds the model
on the ``meta`` device (shapes only, no memory) and refuses one over :data:`MAX_PARAMETERS`.
The bounds are far above every shipped preset (the paper preset: 768-D, a 15x15x11 lattice,
8192 tokens, a few million parameters).
"""

from __future__ import annotations

import logging
import math
from typing import Any

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 64 << 20  # config.json / metadata.json are a few KB
MAX_FIELD = 1_000_000
MAX_LATTICE_CELLS = 65_536
MAX_VOCAB = 262_144
MAX_DIM = 8_192
MAX_PARAMETERS = 200_000_000  # 800 MB of float32


class SizeError(ValueError):
    """A config size is over its bound."""


def _ints(prefix: str, value: Any):
    """(field path, int) for every integer inside ``value``."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield prefix, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _ints(f"{prefix}.{k}", v)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _ints(f"{prefix}[{i}]", v)


def _grids(prefix: str, cfg: dict[str, Any]):
    """(field path, value) for every 3-sided ``*size`` field, nested configs included."""
    for key, value in cfg.items():
        if isinstance(value, dict):
            yield from _grids(f"{prefix}.{key}", value)
        elif key.endswith("size") and isinstance(value, (list, tuple)) and len(value) == 3:
            yield f"{prefix}.{key}", value


def check_config_sizes(system: dict[str, Any]) -> None:
    """Static bounds on a ``SystemConfig`` dict (no model is built); SizeError if over."""
    dim = system.get("dim", 0)
    if isinstance(dim, int) and dim > MAX_DIM:
        raise SizeError(f"system.dim = {dim} is over the limit of {MAX_DIM}")
    for part in ("core_config", "decoder_config"):
        cfg = system.get(part) or {}
        if not isinstance(cfg, dict):
            continue
        for name, value in _ints(part, cfg):
            if value > MAX_FIELD:
                raise SizeError(f"{name} = {value} is over the limit of {MAX_FIELD}")
        for name, value in _grids(part, cfg):
            cells = math.prod(int(v) for v in value if isinstance(v, int))
            if cells > MAX_LATTICE_CELLS:
                raise SizeError(
                    f"{name} = {list(value)} has {cells} cells, over the limit "
                    f"of {MAX_LATTICE_CELLS}"
                )
        vocab = cfg.get("vocab_size")
        if isinstance(vocab, int) and vocab > MAX_VOCAB:
            raise SizeError(f"{part}.vocab_size = {vocab} is over the limit of {MAX_VOCAB}")


def count_meta_parameters(system_cfg: Any) -> int | None:
    """Parameters + buffers of the model ``system_cfg`` describes, built on the meta device
    (no memory); None if this model cannot be built there."""
    import torch

    from celltext.models.system import CellTextModel

    try:
        with torch.device("meta"):
            model = CellTextModel(system_cfg)
    except (NotImplementedError, RuntimeError) as exc:  # e.g. .item() on a meta tensor
        log.debug("meta build failed (%s); only the static bounds apply", exc)
        return None
    return sum(t.numel() for t in model.parameters()) + sum(t.numel() for t in model.buffers())


def check_system_bounds(system: dict[str, Any], system_cfg: Any) -> None:
    """Static bounds, then the parameter budget; SizeError naming what is over."""
    check_config_sizes(system)
    count = count_meta_parameters(system_cfg)
    if count is not None and count > MAX_PARAMETERS:
        raise SizeError(
            f"the model would have {count:,} parameters, over the limit of {MAX_PARAMETERS:,}"
        )
