"""Model soups: the element-wise average of several checkpoints' weights.

Averaging works for checkpoints that share an architecture, a tokenizer and (for good
results) a training trajectory, e.g. the top-k evaluations of one run or fine-tunes of
one parent (Wortsman et al. 2022, "Model soups"). Incompatible checkpoints are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from celltext.hashing import sha256_file
from celltext.registry.checkpoint import (
    TOKENIZER_FILE,
    load_checkpoint,
    load_state_dict_file,
    read_config,
    save_checkpoint,
)


class SoupError(ValueError):
    """Checkpoints that cannot be averaged."""


def average_state_dicts(
    states: list[dict[str, torch.Tensor]], weights: list[float] | None = None
) -> dict[str, torch.Tensor]:
    """Weighted mean of floating-point tensors (others must be equal and are copied)."""
    if not states:
        raise SoupError("nothing to average")
    weights = weights or [1.0] * len(states)
    total = float(sum(weights))
    keys = set(states[0])
    out: dict[str, torch.Tensor] = {}
    for sd in states[1:]:
        if set(sd) != keys:
            raise SoupError("checkpoints have different parameter names")
    for key in sorted(keys):
        first = states[0][key]
        if first.is_floating_point():
            acc = torch.zeros_like(first, dtype=torch.float64)
            for w, sd in zip(weights, states, strict=True):
                if sd[key].shape != first.shape:
                    raise SoupError(f"{key}: shapes differ")
                acc += (w / total) * sd[key].to(torch.float64)
            out[key] = acc.to(first.dtype)
        else:
            if any(not torch.equal(sd[key], first) for sd in states[1:]):
                raise SoupError(f"{key}: non-float tensors differ")
            out[key] = first.clone()
    return out


def make_soup(
    paths: list[Path],
    out: Path,
    weights: list[float] | None = None,
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Average the weights of ``paths`` (same system config and tokenizer) into ``out``."""
    if len(paths) < 2:
        raise SoupError("a soup needs at least two checkpoints")
    systems = [read_config(p).get("system") for p in paths]
    if any(s != systems[0] for s in systems[1:]):
        raise SoupError("checkpoints have different architectures or configs")
    tok_hashes = {sha256_file(Path(p) / TOKENIZER_FILE) for p in paths}
    if len(tok_hashes) != 1:
        raise SoupError("checkpoints have different tokenizers")
    base = load_checkpoint(paths[0])
    states = [load_state_dict_file(p) for p in paths]
    base.model.load_state_dict(average_state_dicts(states, weights), strict=True)
    ingredients = [
        {"path": str(p), "weights_sha256": sha256_file(Path(p) / "model.safetensors")}
        for p in paths
    ]
    meta = {
        "dataset": base.metadata.get("dataset"),
        "training": {**base.metadata.get("training", {}), "soup": ingredients},
        "metrics": {},
        **(metadata or {}),
    }
    config = {k: v for k, v in base.config.items() if k not in ("format_version", "system")}
    return save_checkpoint(out, base.model, base.tokenizer, config, meta, dtype=dtype)
