"""``POST /v1/feedback``: thumbs up/down on an answer, stored in SQLite."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from celltext.serving.limits import check_question
from celltext.serving.routers.deps import get_service
from celltext.serving.schemas import FeedbackRequest, FeedbackResponse
from celltext.serving.service import Service

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/feedback", response_model=FeedbackResponse)
async def feedback(
    req: FeedbackRequest, service: Service = Depends(get_service)
) -> FeedbackResponse:
    """Store a rating of an answer (exported to the dataset review loop by
    ``FeedbackStore.export_review``)."""
    check_question(req.question, service.settings.max_question_chars)
    store = service.feedback
    fid = await asyncio.to_thread(store.add, **req.model_dump())
    service.metrics.feedback.labels(rating=req.rating).inc()
    counts = await asyncio.to_thread(store.counts)
    return FeedbackResponse(id=fid, counts=counts)
