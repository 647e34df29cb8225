"""``GET /v1/models`` and the admin calls ``POST /v1/models/{name}/promote`` / ``rollback``.

Admin calls need ``Authorization: Bearer $CELLTEXT_ADMIN_TOKEN``; with no token configured
they are all refused (403). Moving ``champion`` is what a running service follows when
automatic updates are on (``CELLTEXT_UPDATE_INTERVAL_S``).

Registry calls run on the service's own registry pool under a deadline
(:meth:`~celltext.serving.service.Service.registry`). A registry that cannot answer is a
503 with ``Retry-After`` for the admin calls, and for the anonymous listing a
``registry_error`` without server details (those go to the log).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import Field

from celltext.inference import registry_client
from celltext.serving.routers.deps import get_service, require_admin
from celltext.serving.schemas import (
    AdminResponse,
    ModelOut,
    ModelsResponse,
    PromoteRequest,
    RollbackRequest,
)
from celltext.serving.service import Service, backend_name

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/models", tags=["models"])
admin = APIRouter(
    prefix="/v1/models", tags=["models (admin)"], dependencies=[Depends(require_admin)]
)

ModelName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
UNAVAILABLE = "model registry unavailable (details in the server log)"


class ServedModel(ModelOut):
    """``ModelOut`` and the runtime serving it."""

    backend: str = Field(..., description="torch, onnxruntime, or none (retrieval only).")


class ModelsOut(ModelsResponse):
    """``ModelsResponse`` whose ``current`` names its runtime."""

    current: ServedModel


@router.get("", response_model=ModelsOut)
async def list_models(service: Service = Depends(get_service)) -> ModelsOut:
    """The model being served (and on which runtime) and, when a registered name is
    configured, its versions; a registry that cannot answer is a ``registry_error``."""
    predictor = service.predictor
    info = public_info(predictor.info.to_dict())
    current = ServedModel(**info, backend=backend_name(predictor))
    name = service.settings.registry_name
    if not name:
        return ModelsOut(current=current)
    try:
        versions = await service.registry(registry_client.list_versions, name)
    except Exception as exc:  # noqa: BLE001 -- listing is informative, never fatal
        log.warning("listing the versions of %s failed: %s", name, exc)
        return ModelsOut(current=current, registry_error=_public_error(exc))
    return ModelsOut(current=current, registry=versions)


def _public_error(exc: Exception) -> str:
    """A registry failure as anonymous callers may see it: no URIs, hosts or paths."""
    if isinstance(exc, registry_client.RegistryRefused):
        return f"registry: {exc}"[:300]  # the registry's own answer about names it holds
    if isinstance(exc, registry_client.RegistryUnavailable):
        return UNAVAILABLE
    return "model registry error (details in the server log)"


@admin.post("/{name}/promote", response_model=AdminResponse)
async def promote(
    name: ModelName, req: PromoteRequest, service: Service = Depends(get_service)
) -> AdminResponse:
    """Point ``name@alias`` (default ``champion``) at a version."""
    detail = await _registry_call(service, registry_client.promote, name, req.version, req.alias)
    log.info("promoted %s/%s to %s", name, req.version, req.alias)
    return AdminResponse(name=name, alias=req.alias, version=req.version, detail=detail)


@admin.post("/{name}/rollback", response_model=AdminResponse)
async def rollback(
    name: ModelName, req: RollbackRequest | None = None, service: Service = Depends(get_service)
) -> AdminResponse:
    """Move ``name@alias`` back to the version it pointed at before."""
    alias = req.alias if req is not None else "champion"
    detail = await _registry_call(service, registry_client.rollback, name, alias)
    log.info("rolled back %s@%s", name, alias)
    version = detail.get("version")
    version = None if version is None else str(version)
    return AdminResponse(name=name, alias=alias, version=version, detail=detail)


def public_info(info: dict) -> dict:
    """Model info fit for anonymous callers: names and versions, never server paths."""
    out = dict(info, path=None)
    ref = out.get("ref")
    if isinstance(ref, str) and (ref.startswith(("/", ".", "~")) or "\\" in ref):
        out["ref"] = None  # a filesystem reference, not a registry one
    return out


async def _registry_call(service: Service, fn, *args) -> dict:
    """An admin registry call: 503 (with Retry-After) when the registry cannot answer, the
    registry's refusal (404 / 409) when it says no."""
    try:
        return await service.registry(fn, *args)
    except registry_client.RegistryUnavailable as exc:
        log.warning("registry call %s failed: %s", fn.__name__, exc)
        raise HTTPException(503, str(exc), headers={"Retry-After": "10"}) from exc
    except registry_client.RegistryRefused as exc:
        raise HTTPException(exc.status, f"registry: {exc}") from exc
