"""The service's view of the model registry (:class:`celltext.registry.models.ModelRegistry`).

Three operations: list the versions of a registered model, point an alias at a version
(promote), and move ``champion`` back to the previous champion (rollback). Failures are
mapped to two exceptions the API turns into status codes: :class:`RegistryUnavailable`
(503: no registry, store unreachable) and :class:`RegistryRefused` (404 unknown model or
version, 409 nothing to roll back to).
"""

from __future__ import annotations

from typing import Any


class RegistryUnavailable(RuntimeError):
    """The model registry cannot be reached or is not set up."""


class RegistryRefused(RuntimeError):
    """The registry refused the operation; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int):
        self.status = status
        super().__init__(message)


def _registry():
    try:
        from celltext.registry.models import ModelRegistry

        return ModelRegistry()
    except Exception as exc:  # noqa: BLE001 -- any set-up failure means "unavailable"
        raise RegistryUnavailable(f"model registry unavailable: {exc}") from exc


def _call(fn, *args, **kwargs):
    from celltext.registry.models import RegistryError

    try:
        return fn(*args, **kwargs)
    except RegistryError as exc:
        text = str(exc)
        status = 404 if text.startswith(("no model version", "no alias")) else 409
        raise RegistryRefused(text, status) from exc
    except RegistryRefused:
        raise
    except Exception as exc:  # noqa: BLE001 -- MLflow raises many types for a missing model
        if "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower():
            raise RegistryRefused(str(exc)[:300], 404) from exc
        raise RegistryUnavailable(f"model registry error: {exc}"[:300]) from exc


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
