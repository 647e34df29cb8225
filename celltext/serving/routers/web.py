"""The web page at ``/``: plain HTML and JavaScript from ``celltext/serving/static``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The single page (ask, answer, confidence, feedback, lattice activity)."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")
