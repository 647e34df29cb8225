"""The FastAPI application factory.

``create_app(settings)`` builds an app whose model is loaded once into
``app.state.service`` (:class:`~celltext.serving.service.Service`) by a task the
``lifespan`` hook starts: the port opens at once, ``/health`` answers 503 ``loading`` (and
the model routes 503) until the model is loaded and warm, then 200 ``ok``; a failed load
stays 503 ``error`` with the reason in ``detail``. Tests pass a ready ``predictor`` (started
before the first request) or a ``predictor_factory`` instead of a model reference. Run it
with ``celltext serve`` or any ASGI server:
``uvicorn --factory celltext.serving.app:app_from_env``.

Middleware (outermost first): request metrics (count, latency per route template,
in-flight gauge), then the body limits: size (413) and read time (408).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import celltext
from celltext.inference.predictor import Predictor
from celltext.serving.limits import BodyLimitMiddleware, validation_error_handler
from celltext.serving.routers import answers, embeddings, feedback, health, models, web
from celltext.serving.service import PredictorFactory, Service
from celltext.serving.settings import ServingSettings
from celltext.serving.updater import ChampionWatcher

log = logging.getLogger(__name__)


def create_app(
    settings: ServingSettings | None = None,
    predictor: Predictor | None = None,
    predictor_factory: PredictorFactory | None = None,
) -> FastAPI:
    """A ready-to-serve app (the model loads when the app starts)."""
    settings = settings or ServingSettings.from_env()
    service = Service(settings, predictor=predictor, factory=predictor_factory)

    def watch() -> None:
        if settings.registry_name and settings.update_interval_s > 0:
            watcher = ChampionWatcher(service, settings.registry_name, settings.update_interval_s)
            service.watcher_task = asyncio.create_task(watcher.run(), name="celltext-watcher")

    async def load() -> None:
        try:
            await service.startup()
        except Exception as exc:  # noqa: BLE001 -- reported by /health, the port stays open
            # anonymous callers get the kind of failure, the log the paths and the traceback
            service.status = "error"
            service.error = f"model failed to load: {type(exc).__name__} (see the server log)"
            log.exception("model failed to load")
            return
        watch()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if service.loaded is not None:  # a ready predictor: started before any request
            await service.startup()
            watch()
        else:
            service.loader_task = asyncio.create_task(load(), name="celltext-load")
        yield
        await service.shutdown()

    app = FastAPI(
        title="celltext",
        version=celltext.__version__,
        description=(
            "Questions in, answers out: teacher encoder -> cellular core -> generative "
            "decoder, with a quality check and a phrase-bank fallback."
        ),
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    for module in (answers, embeddings, models, feedback, health, web):
        app.include_router(module.router)
    app.include_router(models.admin)
    app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    app.add_middleware(MetricsMiddleware, service=service)
    from celltext.serving.docs import serve_docs_locally

    serve_docs_locally(app)  # /docs and /redoc from local assets (offline)
    return app


def app_from_env() -> FastAPI:
    """App configured from ``CELLTEXT_*`` variables (for ``uvicorn --factory``)."""
    return create_app(ServingSettings.from_env())


class MetricsMiddleware:
    """Counts requests by route template and status, times them, tracks requests in flight."""

    def __init__(self, app: ASGIApp, service: Service):
        self.app = app
        self.metrics = service.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.inflight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.inflight.dec()
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or _fallback_endpoint(scope, status)
            self.metrics.requests.labels(endpoint, scope["method"], str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


def _fallback_endpoint(scope: Scope, status: int) -> str:
    """Label for requests that matched no route (bounded cardinality)."""
    path = scope.get("path", "")
    return "/static" if path.startswith("/static/") else ("unmatched" if status == 404 else "other")
