"""Named presets: ``configs/presets/<name>.yaml`` loaded into :class:`Preset`.

``load_preset("quick", overrides=["stages.core.train.lr=3e-4", "seed=1"])`` reads the
YAML, applies dotted ``key=value`` overrides (values parsed as YAML scalars), and
validates the result against the dataclasses, so a typo fails with the field named.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from celltext.config import ConfigError
from celltext.paths import presets_dir
from celltext.training.args import Preset


def list_presets() -> list[str]:
    """Names of the presets shipped in ``configs/presets``."""
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def preset_path(name_or_path: str | Path) -> Path:
    """The YAML file of a preset name, or the path itself if it is a file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
        return path
    candidate = presets_dir() / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = ", ".join(list_presets()) or "none"
        raise FileNotFoundError(f"unknown preset {str(name_or_path)!r}; known: {known}")
    return candidate


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to a nested dict (returns a copy)."""
    data = copy.deepcopy(data)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(item, "override must look like key.path=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(key, f"{part!r} is not a mapping")
            node = child
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return data


def load_preset(name_or_path: str | Path, overrides: list[str] | None = None) -> Preset:
    """Load and validate a preset by name (or YAML/JSON path), with dotted overrides."""
    path = preset_path(name_or_path)
    text = path.read_text()
    data = yaml.safe_load(text) or {}
    return Preset.from_dict(apply_overrides(data, overrides))
