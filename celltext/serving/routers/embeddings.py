"""``POST /v1/decode`` (embedding -> text) and ``POST /v1/embed`` (text -> embedding)."""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, Depends, HTTPException

from celltext.inference.predictor import DimensionError
from celltext.serving.limits import check_batch, check_embedding_rows, check_question
from celltext.serving.routers.deps import get_service
from celltext.serving.schemas import (
    DecodedOut,
    DecodeRequest,
    DecodeResponse,
    EmbedRequest,
    EmbedResponse,
)
from celltext.serving.service import Service

router = APIRouter(prefix="/v1", tags=["embeddings"])


@router.post("/decode", response_model=DecodeResponse)
async def decode(req: DecodeRequest, service: Service = Depends(get_service)) -> DecodeResponse:
    """Decode raw teacher-space embeddings to text (the core is skipped)."""
    predictor = service.predictor
    check_batch(req.embeddings, service.settings.max_batch, "embeddings")
    check_embedding_rows(req.embeddings, predictor.dim, predictor.teacher.id)
    start = time.perf_counter()
    embs = np.asarray(req.embeddings, dtype=np.float32)  # (N, D)
    try:
        decoded = await service.call(predictor.decode, embs)
    except DimensionError as exc:  # checked above; kept as the predictor's own guard
        raise HTTPException(422, str(exc)) from exc
    return DecodeResponse(
        texts=[DecodedOut(text=d.text, similarity=d.similarity) for d in decoded],
        dim=predictor.dim,
        model=predictor.info.label,
        latency_ms=(time.perf_counter() - start) * 1000.0,
    )


@router.post("/embed", response_model=EmbedResponse)
async def embed(req: EmbedRequest, service: Service = Depends(get_service)) -> EmbedResponse:
    """Teacher embeddings of texts (L2-normalised)."""
    predictor = service.predictor
    check_batch(req.texts, service.settings.max_batch, "texts")
    for i, text in enumerate(req.texts):
        check_question(text, service.settings.max_question_chars, ("body", "texts", i))
    start = time.perf_counter()
    vecs = await service.call(predictor.embed, req.texts)  # (N, D)
    return EmbedResponse(
        embeddings=np.round(vecs, 6).tolist(),
        dim=int(vecs.shape[1]),
        teacher=predictor.teacher.id,
        latency_ms=(time.perf_counter() - start) * 1000.0,
    )
