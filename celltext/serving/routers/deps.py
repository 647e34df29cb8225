"""Dependencies shared by the routers: the service object and the admin guard."""

from __future__ import annotations

import hmac

from fastapi import Header, HTTPException, Request

from celltext.serving.service import Service


def get_service(request: Request) -> Service:
    """The app's :class:`~celltext.serving.service.Service`."""
    return request.app.state.service


def require_admin(request: Request, authorization: str | None = Header(None)) -> None:
    """Bearer-token check for version management; refuses everything when no token is set."""
    token = get_service(request).settings.admin_token
    if not token:
        raise HTTPException(403, "admin API disabled: set CELLTEXT_ADMIN_TOKEN to enable it")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
