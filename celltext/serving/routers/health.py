"""``GET /health`` and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from celltext.serving.routers.deps import get_service
from celltext.serving.schemas import HealthResponse
from celltext.serving.service import Service, backend_name

router = APIRouter(tags=["health"])


class HealthOut(HealthResponse):
    """``HealthResponse`` and the runtime serving the model."""

    backend: str | None = Field(
        None, description="torch, onnxruntime, or none (retrieval only); null while loading."
    )


@router.get("/health", response_model=HealthOut)
async def health(response: Response, service: Service = Depends(get_service)) -> HealthOut:
    """Readiness: 200 ``ok`` once the model is loaded and warm; 503 ``loading`` before (the
    port opens first), 503 ``error`` when the load failed."""
    loaded = service.loaded
    status = "error" if service.status == "error" else "loading" if loaded is None else "ok"
    if status != "ok":
        response.status_code = 503
    if status == "loading":
        response.headers["Retry-After"] = "5"
    return HealthOut(
        status=status,
        model=loaded.info.label if loaded is not None else None,
        uptime_s=time.time() - service.started,
        fallback=service.settings.fallback,
        detail=service.error,
        backend=backend_name(loaded) if loaded is not None else None,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(service: Service = Depends(get_service)) -> Response:
    """Prometheus exposition format."""
    body, content_type = service.metrics.render()
    return Response(content=body, media_type=content_type)
