"""``GET /v1/models`` and the admin calls ``POST /v1/models/{name}/promote`` / ``rollback``.

Admin calls need ``Authorization: Bearer $CELLTEXT_ADMIN_TOKEN``; with no token configured
they are all refused (403). Moving ``champion`` is what a running service follows when
automatic updates are on (``CELLTEXT_UPDATE_INTERVAL_S``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path

from celltext.inference import registry_client
from celltext.serving.routers.deps import get_service, require_admin
from celltext.serving.schemas import (
    AdminResponse,
    ModelOut,
    ModelsResponse,
    PromoteRequest,
    RollbackRequest,
)
from celltext.serving.service import Service

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/models", tags=["models"])
admin = APIRouter(
    prefix="/v1/models", tags=["models (admin)"], dependencies=[Depends(require_admin)]
)

ModelName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]


@router.get("", response_model=ModelsResponse)
async def list_models(service: Service = Depends(get_service)) -> ModelsResponse:
    """The model being served and, when a registered name is configured, its versions."""
    current = ModelOut(**public_info(service.predictor.info.to_dict()))
    name = service.settings.registry_name
    if not name:
        return ModelsResponse(current=current)
    try:
        versions = await asyncio.to_thread(registry_client.list_versions, name)
    except Exception as exc:  # noqa: BLE001 -- listing is informative, never fatal
        return ModelsResponse(current=current, registry_error=str(exc)[:300])
    return ModelsResponse(current=current, registry=versions)


@admin.post("/{name}/promote", response_model=AdminResponse)
async def promote(name: ModelName, req: PromoteRequest) -> AdminResponse:
    """Point ``name@alias`` (default ``champion``) at a version."""
    detail = await _registry_call(registry_client.promote, name, req.version, req.alias)
    log.info("promoted %s/%s to %s", name, req.version, req.alias)
    return AdminResponse(name=name, alias=req.alias, version=req.version, detail=detail)


@admin.post("/{name}/rollback", response_model=AdminResponse)
async def rollback(name: ModelName, req: RollbackRequest | None = None) -> AdminResponse:
    """Move ``name@alias`` back to the version it pointed at before."""
    alias = req.alias if req is not None else "champion"
    detail = await _registry_call(registry_client.rollback, name, alias)
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


async def _registry_call(fn, *args) -> dict:
    try:
        return await asyncio.to_thread(fn, *args)
    except registry_client.RegistryUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc
    except registry_client.RegistryRefused as exc:
        raise HTTPException(exc.status, f"registry: {exc}") from exc
