"""API docs (``/docs`` Swagger UI, ``/redoc``) served from local files, so they work offline.

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN; without network they are
blank. The ``fastapi-offline`` package ships the same assets; :func:`serve_docs_locally`
replaces FastAPI's docs routes by pages that load them from ``/docs-assets``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"


def assets_dir() -> Path:
    """Directory of the Swagger UI and ReDoc files (from the ``fastapi-offline`` package)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def serve_docs_locally(app: FastAPI) -> FastAPI:
    """Serve ``app``'s ``/docs`` and ``/redoc`` with local assets (idempotent)."""
    if getattr(app.state, "local_docs", False) or app.openapi_url is None:
        return app
    docs_paths = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) not in docs_paths
    ]
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    title = app.title

    def url(request: Request, path: str) -> str:
        return request.scope.get("root_path", "").rstrip("/") + path

    if app.docs_url:
        oauth2_url = app.swagger_ui_oauth2_redirect_url

        @app.get(app.docs_url, include_in_schema=False)
        async def swagger_ui(request: Request) -> HTMLResponse:
            return get_swagger_ui_html(
                openapi_url=url(request, app.openapi_url),
                title=f"{title} - Swagger UI",
                oauth2_redirect_url=url(request, oauth2_url) if oauth2_url else None,
                swagger_js_url=url(request, f"{ASSETS_URL}/swagger-ui-bundle.js"),
                swagger_css_url=url(request, f"{ASSETS_URL}/swagger-ui.css"),
                swagger_favicon_url=url(request, f"{ASSETS_URL}/favicon.png"),
                swagger_ui_parameters=app.swagger_ui_parameters,
            )

        if oauth2_url:

            @app.get(oauth2_url, include_in_schema=False)
            async def swagger_ui_redirect() -> HTMLResponse:
                return get_swagger_ui_oauth2_redirect_html()

    if app.redoc_url:

        @app.get(app.redoc_url, include_in_schema=False)
        async def redoc(request: Request) -> HTMLResponse:
            return get_redoc_html(
                openapi_url=url(request, app.openapi_url),
                title=f"{title} - ReDoc",
                redoc_js_url=url(request, f"{ASSETS_URL}/redoc.standalone.js"),
                redoc_favicon_url=url(request, f"{ASSETS_URL}/favicon.png"),
                with_google_fonts=False,
            )

    app.state.local_docs = True
    return app
