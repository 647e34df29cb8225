"""``POST /v1/feedback``: thumbs up/down on an answer, stored in SQLite.

Feedback is anonymous input written to disk, so it is bounded three ways: each field's size
(``feedback_max_chars``, the question by ``max_question_chars``), a per-client rate
(``feedback_per_minute``, 429 past it) and the table's total size (``feedback_max_rows``,
507 past it, counted in the insert's own transaction). A full disk is a 507 as well, any
other storage error (a lock held too long, a read-only file) a 503 with ``Retry-After``:
never a 500 that pages someone.

The client is ``request.client.host``: the connection's address, or the one in
``X-Forwarded-For`` only when uvicorn was told to trust the sending proxy
(``CELLTEXT_FORWARDED_ALLOW_IPS``, passed on by ``celltext serve``), so a client cannot name
itself. The rate limiter remembers at most ``_MAX_CLIENTS`` addresses (least recently seen
forgotten first).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import OrderedDict, deque

from fastapi import APIRouter, Depends, HTTPException, Request

from celltext.serving.feedback import FeedbackFull, is_disk_full
from celltext.serving.limits import check_question, check_text_size
from celltext.serving.routers.deps import get_service
from celltext.serving.schemas import FeedbackRequest, FeedbackResponse
from celltext.serving.service import Service

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["feedback"])
_WINDOW_S = 60.0
_MAX_CLIENTS = 10_000  # addresses remembered by the rate limiter


class RateLimiter:
    """Sliding-window count of events per key (one deque of timestamps per client).

    At most ``max_clients`` keys are remembered; past that the least recently seen is
    forgotten (LRU), so a flood of new addresses costs bounded memory and never resets the
    windows of the clients still active."""

    def __init__(
        self, per_window: int, window_s: float = _WINDOW_S, max_clients: int = _MAX_CLIENTS
    ):
        self.per_window, self.window_s, self.max_clients = per_window, window_s, max_clients
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def allow(self, key: str, now: float | None = None) -> bool:
        """Record an event for ``key``; False when it is over the limit."""
        now = time.monotonic() if now is None else now
        times = self._seen.setdefault(key, deque())
        self._seen.move_to_end(key)  # now the most recently seen
        while len(self._seen) > self.max_clients:
            self._seen.popitem(last=False)
        while times and now - times[0] > self.window_s:
            times.popleft()
        if len(times) >= self.per_window:
            return False
        times.append(now)
        return True


def _limiter(service: Service) -> RateLimiter:
    limiter = getattr(service, "feedback_limiter", None)
    if limiter is None:
        limiter = service.feedback_limiter = RateLimiter(service.settings.feedback_per_minute)
    return limiter


@router.post("/feedback", response_model=FeedbackResponse)
async def feedback(
    req: FeedbackRequest, request: Request, service: Service = Depends(get_service)
) -> FeedbackResponse:
    """Store a rating of an answer (exported to the dataset review loop by
    ``FeedbackStore.export_review``)."""
    settings = service.settings
    check_question(req.question, settings.max_question_chars)
    for field in ("answer", "comment"):
        check_text_size(getattr(req, field) or "", settings.feedback_max_chars, field)
    client = request.client.host if request.client is not None else "unknown"
    if not _limiter(service).allow(client):
        raise HTTPException(
            429, f"too much feedback: at most {settings.feedback_per_minute} a minute"
        )
    store = service.feedback
    try:
        fid = await asyncio.to_thread(
            store.add, **req.model_dump(), max_rows=settings.feedback_max_rows
        )
        service.metrics.feedback.labels(rating=req.rating).inc()
        counts = await asyncio.to_thread(store.counts)
    except FeedbackFull:
        raise HTTPException(507, "the feedback store is full; try again later") from None
    except (sqlite3.Error, OSError) as exc:
        raise _storage_error(exc) from None
    return FeedbackResponse(id=fid, counts=counts)


def _storage_error(exc: BaseException) -> HTTPException:
    """A clear 507 (disk full) or 503 (locked, read-only, I/O error) instead of a 500."""
    log.warning("feedback not stored: %s: %s", type(exc).__name__, exc)
    if is_disk_full(exc):
        return HTTPException(507, "the feedback store is out of disk space; try again later")
    return HTTPException(
        503, "the feedback store is unavailable; try again later", headers={"Retry-After": "30"}
    )
