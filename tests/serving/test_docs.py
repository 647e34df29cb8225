"""``/docs`` and ``/redoc`` load Swagger UI and ReDoc from the app itself, not a CDN."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from celltext.serving.app import create_app
from celltext.serving.docs import serve_docs_locally
from celltext.serving.settings import ServingSettings


def _app():
    # the lifespan (model loading) never runs: TestClient is not used as a context manager
    return serve_docs_locally(create_app(ServingSettings(warmup=False), predictor_factory=None))


def test_docs_pages_reference_only_local_assets():
    app = _app()
    assert serve_docs_locally(app) is app  # idempotent: routes are not added twice
    client = TestClient(app)
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html.text)
        assets = [u for u in urls if u.endswith((".js", ".css", ".png"))]
        assert assets and all(u.startswith("/docs-assets/") for u in assets), urls
        for asset in assets:
            got = client.get(asset)
            assert got.status_code == 200 and len(got.content) > 1000, asset
    assert "cdn" not in client.get("/docs").text.lower()
    assert [getattr(r, "path", None) for r in app.routes].count("/docs") == 1
    assert client.get("/openapi.json").json()["info"]["title"] == "celltext"
