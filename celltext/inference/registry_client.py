"""The service's view of the model registry (:class:`celltext.registry.models.ModelRegistry`).

Three operations: list the versions of a registered model, point an alias at a version
(promote), and move ``champion`` back to the previous champion (rollback). Failures are
mapped to two exceptions the API turns into status codes: :class:`RegistryUnavailable`
(503: the store cannot be reached, timed out, or is corrupt or missing) and
:class:`RegistryRefused` (404 unknown model, version or alias; 409 nothing to roll back
to). "Does not exist" is only ever MLflow's own answer, never a guess from a failure.
"""

from __future__ import annotations

from typing import Any

from celltext.registry.errors import RegistryError, RegistryNotFound, RegistryUnavailable

__all__ = ["RegistryRefused", "RegistryUnavailable", "list_versions", "promote", "resolve",
           "rollback"]  # fmt: skip


class RegistryRefused(RuntimeError):
    """The registry refused the operation; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int):
        self.status = status
        super().__init__(message)


def _registry():
    from celltext.registry.models import ModelRegistry

    return ModelRegistry()  # a store that cannot be opened raises RegistryUnavailable


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (RegistryUnavailable, RegistryRefused):
        raise
    except RegistryNotFound as exc:
        raise RegistryRefused(str(exc), 404) from exc
    except RegistryError as exc:
        raise RegistryRefused(str(exc), 409) from exc


def list_versions(name: str) -> list[dict[str, Any]]:
    """Versions of registered model ``name``, newest first (dicts with ``version``, ``aliases``)."""
    registry = _registry()
    return _call(registry.list_versions, name)


def promote(name: str, version: str, alias: str = "champion") -> dict[str, Any]:
    """Point ``name@alias`` at ``version``."""
    if not str(version).isdigit():
        raise RegistryRefused(f"version must be a number, got {version!r}", 404)
    registry = _registry()
    return _call(registry.promote, name, int(version), alias=alias)


def rollback(name: str, alias: str = "champion") -> dict[str, Any]:
    """Move ``name@champion`` back to the previous champion."""
    if alias != "champion":
        raise RegistryRefused("only the champion alias keeps a history to roll back", 409)
    registry = _registry()
    return _call(registry.rollback, name)


def resolve(ref: str) -> tuple[str, int] | None:
    """``(name, version)`` of a registry reference, or None when ``ref`` is not one."""
    import re

    if not re.match(r"^[A-Za-z0-9_.\-]+(@[A-Za-z0-9_.\-]+|/\d+)$", ref or ""):
        return None
    registry = _registry()
    return _call(registry.resolve, ref)
