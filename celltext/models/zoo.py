"""Architecture registry (the model zoo): versioned names -> (kind, config class, constructor).

Modelled on timm's ``_registry.py``: a decorator registers a model class under a
versioned name such as ``hybrid_cct_mamba_v1``; ``create_model(name, **overrides)``
builds it from its default config with some fields replaced. A bare family name
(``hybrid_cct_mamba``) resolves to the highest registered version of the given kind.
Names are unique per kind: ``hybrid_cct_mamba_v1`` exists both as a core and as a decoder,
so look-ups of such a name must say which ``kind`` they mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch.nn as nn

from celltext.config import Config

Kind = Literal["core", "decoder"]
_VERSIONED = re.compile(r"^(?P<family>[a-z0-9_]+?)_v(?P<version>\d+)$")


@dataclass(frozen=True)
class ModelEntry:
    """One registered architecture."""

    name: str  # versioned name, e.g. "hybrid_cct_mamba_v1"
    family: str  # e.g. "hybrid_cct_mamba"
    version: int
    kind: Kind
    config_cls: type[Config]
    cls: Callable[[Any], nn.Module]


_REGISTRY: dict[tuple[str, str], ModelEntry] = {}  # (kind, versioned name) -> entry


def register_model(name: str, kind: Kind, config_cls: type[Config]) -> Callable:
    """Class decorator: register ``cls(config)`` under the versioned ``name``."""
    match = _VERSIONED.match(name)
    if match is None:
        raise ValueError(f"model name {name!r} must look like 'family_vN'")
    if kind not in ("core", "decoder"):
        raise ValueError(f"kind must be 'core' or 'decoder', got {kind!r}")

    def decorator(cls: Callable) -> Callable:
        if (kind, name) in _REGISTRY:
            raise ValueError(f"{kind} model {name!r} is already registered")
        _REGISTRY[(kind, name)] = ModelEntry(
            name, match["family"], int(match["version"]), kind, config_cls, cls
        )
        return cls

    return decorator


def resolve(name: str, kind: Kind | None = None) -> ModelEntry:
    """Find an entry by versioned name, or by family name (latest version of ``kind``)."""
    candidates = [
        e
        for e in _REGISTRY.values()
        if name in (e.name, e.family) and (kind is None or e.kind == kind)
    ]
    if not candidates:
        known = ", ".join(sorted(f"{k}:{n}" for k, n in _REGISTRY))
        raise KeyError(
            f"unknown model {name!r}{f' of kind {kind}' if kind else ''}; known: {known}"
        )
    kinds = {e.kind for e in candidates}
    if len(kinds) > 1:
        raise KeyError(f"model {name!r} exists as {' and '.join(sorted(kinds))}; pass kind=")
    return max(candidates, key=lambda e: e.version)


def create_model(
    name: str, kind: Kind | None = None, config: Config | dict | None = None, **overrides: Any
) -> nn.Module:
    """Build a registered model from its default config (or ``config``) plus ``overrides``."""
    entry = resolve(name, kind)
    if config is None:
        cfg = entry.config_cls(**overrides) if overrides else entry.config_cls()
    else:
        base = config.to_dict() if isinstance(config, Config) else dict(config)
        cfg = entry.config_cls.from_dict({**base, **overrides})
    return entry.cls(cfg)


def list_models(kind: Kind | None = None) -> list[ModelEntry]:
    """Every registered architecture (optionally of one kind), sorted by name."""
    return sorted(
        (e for e in _REGISTRY.values() if kind is None or e.kind == kind),
        key=lambda e: (e.kind, e.name),
    )


def families(kind: Kind) -> tuple[str, ...]:
    """The family names of every registered architecture of ``kind``, sorted: the one list
    of architectures (the ablation's default variants; :func:`list_models` gives the
    versioned entries)."""
    return tuple(sorted({e.family for e in _REGISTRY.values() if e.kind == kind}))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters, counting tied tensors once."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total
