"""Configuration dataclasses: load/save as YAML or JSON, validate, hash.

Every config in celltext is a ``@dataclass`` that inherits :class:`Config`::

    @dataclass
    class LatticeConfig(Config):
        size: tuple[int, int, int] = (8, 8, 8)
        steps: int = 4

        def validate(self) -> None:
            require(all(s > 0 for s in self.size), "size", "every side must be > 0")

``LatticeConfig.from_dict(d)`` rejects unknown keys and values of the wrong type with a
:class:`ConfigError` that names the field; ``cfg.config_hash()`` is a stable sha256 of
the canonical JSON form, used in checkpoints and data manifests.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T", bound="Config")


class ConfigError(ValueError):
    """A configuration value is missing, unknown, or invalid. The message names the field."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def require(condition: bool, field: str, message: str) -> None:
    """Raise :class:`ConfigError` for ``field`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(field, message)


def _coerce(value: Any, tp: Any, field: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lists to tuples, dicts to configs."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, field)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(field, f"expected {tp}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(field, f"expected one of {list(args)}, got {value!r}")
        return value
    if isinstance(tp, type) and issubclass(tp, Config):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(field, f"expected a mapping for {tp.__name__}, got {value!r}")
        return tp.from_dict(value, _prefix=f"{field}.")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(field, f"expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(field, f"expected {len(args)} items, got {len(value)}")
            items = [
                _coerce(v, a, f"{field}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            ]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(v, item_tp, f"{field}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else list(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(field, f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(field, f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(field, f"expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(field, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(field, f"expected a string, got {value!r}")
        return value
    return value


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """Resolved field annotations of a config class (once per class: configs are built
    per call on the answer path)."""
    return typing.get_type_hints(cls)


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; nested mappings are merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _with_field_defaults(f: dataclasses.Field, value: Any) -> Any:
    """A partial mapping for a nested config, completed from the field's own default.

    ``HybridCCTMambaConfig(lattice={"steps": 2})`` keeps the hybrid's default lattice (its
    ``default_factory``) and changes only ``steps``, instead of falling back to the bare
    ``LatticeConfig`` defaults.
    """
    if not isinstance(value, dict) or f.default_factory is dataclasses.MISSING:
        return value
    default = f.default_factory()
    if not isinstance(default, Config):
        return value
    return deep_merge(default.to_dict(), value)


@dataclasses.dataclass
class Config:
    """Base class of every celltext configuration dataclass."""

    def __post_init__(self) -> None:
        hints = _type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _with_field_defaults(f, getattr(self, f.name))
            # object.__setattr__: frozen configs (``GenerationOptions``) are coerced too
            object.__setattr__(self, f.name, _coerce(value, hints[f.name], f.name))
        self.validate()

    def validate(self) -> None:
        """Check values; subclasses raise :class:`ConfigError` naming the field."""

    # -- dict / file round trips -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], _prefix: str = "") -> T:
        """Build from a mapping; unknown or missing keys raise :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(_prefix.rstrip(".") or cls.__name__, "expected a mapping")
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(_prefix + unknown[0], f"unknown field for {cls.__name__}")
        hints = _type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in data.items():
            value = _with_field_defaults(fields[key], value)
            kwargs[key] = _coerce(value, hints[key], _prefix + key)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            if _prefix and not exc.field.startswith(_prefix):
                raise ConfigError(_prefix + exc.field, str(exc).split(": ", 1)[-1]) from exc
            raise
        except TypeError as exc:  # a required field is missing
            raise ConfigError(_prefix.rstrip(".") or cls.__name__, str(exc)) from exc

    def replace(self: T, **overrides: Any) -> T:
        """A copy with some fields changed (validated like any other construction).

        A mapping given for a nested config changes only the keys it names.
        """
        return type(self).from_dict(deep_merge(self.to_dict(), overrides))

    def save(self, path: str | Path) -> Path:
        """Write as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".yaml", ".yml"):
            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        else:
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls: type[T], path: str | Path) -> T:
        """Read a YAML or JSON file written by :meth:`save` (or by hand)."""
        path = Path(path)
        text = path.read_text()
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        return cls.from_dict(data or {})

    def config_hash(self) -> str:
        """Stable sha256 (hex) of the canonical JSON form: same values, same hash."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
