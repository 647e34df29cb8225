"""``celltext serve``: the HTTP API and web page (uvicorn)."""

from __future__ import annotations

import typer

from celltext.cli.common import err_console, fail


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Model ref (default: $CELLTEXT_MODEL or the shipped model)."
    ),
    no_fallback: bool = typer.Option(
        False, "--no-fallback", help="Disable the phrase-bank fallback."
    ),
    threshold: float | None = typer.Option(None, "--threshold", min=0.0, max=1.0),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Predictor threads."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the HTTP API (``/v1/...``), the web page (``/``) and ``/metrics``.

    Every setting can also come from ``CELLTEXT_*`` environment variables (see
    ``celltext/serving/settings.py``); the admin token only from ``CELLTEXT_ADMIN_TOKEN``.
    ``X-Forwarded-For`` is believed only from the proxies in ``CELLTEXT_FORWARDED_ALLOW_IPS``
    (unset: from nobody).
    """
    import uvicorn

    from celltext.config import ConfigError
    from celltext.serving.app import create_app
    from celltext.serving.docs import serve_docs_locally
    from celltext.serving.settings import ServingSettings

    overrides = {"model": model, "threshold": threshold, "workers": workers}
    if no_fallback:
        overrides["fallback"] = False
    try:
        settings = ServingSettings.from_env(**overrides)
    except ConfigError as exc:
        raise fail(f"bad setting: {exc}", code=2) from exc
    if not settings.admin_enabled:
        err_console.print("[dim]admin endpoints disabled (CELLTEXT_ADMIN_TOKEN is not set)[/]")
    err_console.print(f"serving on http://{host}:{port}/ (API docs at /docs)")
    app = serve_docs_locally(create_app(settings))  # Swagger UI without a CDN
    trusted = ",".join(settings.trusted_proxies)  # "" also overrides uvicorn's 127.0.0.1 default
    uvicorn.run(
        app, host=host, port=port, log_level=log_level, access_log=False,
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted,
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``serve``."""
    app.command("serve")(serve)
