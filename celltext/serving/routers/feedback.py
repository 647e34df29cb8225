"""``POST /v1/feedback``: thumbs up/down on an answer, stored in SQLite.

Feedback is anonymous input written to disk, so it is bounded three ways: each field's size
(``feedback_max_chars``, the question by ``max_question_chars``), a per-client rate
(``feedback_per_minute``, 429 past it) and the table's total size (``feedback_max_rows``,
507 past it).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from fastapi import APIRouter, Depends, HTTPException, Request

from celltext.serving.limits import check_question, check_text_size
from celltext.serving.routers.deps import get_service
from celltext.serving.schemas import FeedbackRequest, FeedbackResponse
from celltext.serving.service import Service

router = APIRouter(prefix="/v1", tags=["feedback"])
_WINDOW_S = 60.0
_MAX_CLIENTS = 10_000  # addresses remembered by the rate limiter


class RateLimiter:
    """Sliding-window count of events per key (one deque of timestamps per client)."""

    def __init__(self, per_window: int, window_s: float = _WINDOW_S):
        self.per_window, self.window_s = per_window, window_s
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        """Record an event for ``key``; False when it is over the limit."""
        now = time.monotonic() if now is None else now
        if len(self._seen) > _MAX_CLIENTS:
            self._seen.clear()  # bounded memory; a flood resets everyone's window
        times = self._seen.setdefault(key, deque())
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
    counts = await asyncio.to_thread(store.counts)
    if sum(counts.values()) >= settings.feedback_max_rows:
        raise HTTPException(507, "the feedback store is full; try again later")
    fid = await asyncio.to_thread(store.add, **req.model_dump())
    service.metrics.feedback.labels(rating=req.rating).inc()
    counts = await asyncio.to_thread(store.counts)
    return FeedbackResponse(id=fid, counts=counts)
