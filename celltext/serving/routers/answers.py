"""``POST /v1/answer``, ``POST /v1/answer/batch`` and ``POST /v1/activity``."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Depends

from celltext.serving.limits import check_batch, check_question
from celltext.serving.routers.deps import get_service
from celltext.serving.schemas import (
    ActivityRequest,
    ActivityResponse,
    AnswerOut,
    AnswerRequest,
    BatchAnswerRequest,
    BatchAnswerResponse,
)
from celltext.serving.service import Service

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["answers"])


@router.post("/answer", response_model=AnswerOut)
async def answer(req: AnswerRequest, service: Service = Depends(get_service)) -> AnswerOut:
    """Answer one question: generated, quality-checked, or from the phrase bank."""
    check_question(req.question, service.settings.max_question_chars)
    predictor = service.predictor
    (result,) = await service.answer([req.question], predictor)
    out = AnswerOut(**result.to_dict())
    if req.include_activity:
        out.activity = (await _activity(service, predictor, req.question)).model_dump()
    return out


@router.post("/answer/batch", response_model=BatchAnswerResponse)
async def answer_batch(
    req: BatchAnswerRequest, service: Service = Depends(get_service)
) -> BatchAnswerResponse:
    """Answer several questions as one batch (at most ``max_batch``)."""
    check_batch(req.questions, service.settings.max_batch, "questions")
    for i, q in enumerate(req.questions):
        check_question(q, service.settings.max_question_chars, ("body", "questions", i))
    predictor = service.predictor
    start = time.perf_counter()
    results = await service.answer(req.questions, predictor)
    return BatchAnswerResponse(
        answers=[AnswerOut(**r.to_dict()) for r in results],
        latency_ms=(time.perf_counter() - start) * 1000.0,
        model=predictor.info.label,
    )


@router.post("/activity", response_model=ActivityResponse)
async def activity(
    req: ActivityRequest, service: Service = Depends(get_service)
) -> ActivityResponse:
    """Which cells of the 3D lattice fired for this question (cores with a lattice only)."""
    check_question(req.question, service.settings.max_question_chars)
    return await _activity(service, service.predictor, req.question)


async def _activity(service: Service, predictor, question: str) -> ActivityResponse:
    try:
        data = await service.call(predictor.activity, question)
    except Exception as exc:  # noqa: BLE001 -- the picture is optional, the answer is not
        log.warning("activity failed: %s", exc)
        return ActivityResponse(available=False, reason=f"activity failed: {exc}"[:200])
    if data is None:
        return ActivityResponse(available=False, reason="this model's core has no lattice")
    return ActivityResponse(available=True, **data)
