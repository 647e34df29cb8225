"""``GET /health`` and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Response

from celltext.serving.routers.deps import get_service
from celltext.serving.schemas import HealthResponse
from celltext.serving.service import Service

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
async def health(response: Response, service: Service = Depends(get_service)) -> HealthResponse:
    """Liveness and readiness: 200 with ``ok`` once the model is loaded, else 503."""
    loaded = service.loaded
    if service.status != "ok" or loaded is None:
        response.status_code = 503
    return HealthResponse(
        status=service.status if loaded is not None else "loading",
        model=loaded.info.label if loaded is not None else None,
        uptime_s=time.time() - service.started,
        fallback=service.settings.fallback,
        detail=service.error,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(service: Service = Depends(get_service)) -> Response:
    """Prometheus exposition format."""
    body, content_type = service.metrics.render()
    return Response(content=body, media_type=content_type)
