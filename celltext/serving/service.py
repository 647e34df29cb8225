"""What one running service holds: settings, the current predictor, metrics, feedback, workers.

Route handlers get this object from ``app.state.service`` and never touch torch: every
model call goes through :meth:`Service.answer` / :meth:`Service.call`, which run the
predictor in a thread pool under the per-request timeout. A request past its timeout, or
refused by a full micro-batch queue, gets phrase-bank answers (or a 504 / 503), and every
answer reports the time the request waited for it (``latency_ms``).

The predictor is swapped by assigning one attribute (:meth:`Service.swap`): a request
reads ``service.predictor`` once at its start and keeps that object to the end, so a swap
never disturbs requests in flight, and the old model is freed when the last one finishes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import HTTPException

from celltext.inference.factory import load_predictor
from celltext.inference.predictor import Answer, Predictor, PredictorConfig, StageError
from celltext.serving.batching import MicroBatcher, Overloaded
from celltext.serving.feedback import FeedbackStore
from celltext.serving.metrics import ServiceMetrics
from celltext.serving.settings import ServingSettings
from celltext.textcheck import first_text_problem

log = logging.getLogger(__name__)

PredictorFactory = Callable[[ServingSettings], Predictor]


def default_predictor_factory(settings: ServingSettings) -> Predictor:
    """Load the configured model (``settings.model``) with torch threads set."""
    import torch

    torch.set_num_threads(settings.torch_threads)
    config = PredictorConfig(
        threshold=settings.threshold, fallback=settings.fallback, release=settings.release
    )
    return load_predictor(settings.model, fallback=settings.fallback, config=config)


class Service:
    """State of one app (see module docstring)."""

    def __init__(
        self,
        settings: ServingSettings,
        predictor: Predictor | None = None,
        factory: PredictorFactory | None = None,
    ):
        self.settings = settings
        self.factory = factory or default_predictor_factory
        self.metrics = ServiceMetrics()
        self.feedback = FeedbackStore(settings.feedback_db)
        self.executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="celltext-predict")
        self.batcher = (
            MicroBatcher(self.executor, settings.micro_batch, settings.batch_wait_ms / 1000.0,
                         settings.workers, settings.max_queue)
            if settings.micro_batch > 1 else None
        )  # fmt: skip
        self._predictor = predictor
        self.status = "loading" if predictor is None else "ok"
        self.error: str | None = None
        self.started = time.time()
        self.watcher_task: asyncio.Task | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def startup(self) -> None:
        """Load the model (once, in a worker thread), warm it up, start the batcher."""
        loop = asyncio.get_running_loop()
        if self._predictor is None:
            self._predictor = await loop.run_in_executor(self.executor, self.factory, self.settings)
        self.metrics.set_model(self._predictor.info)
        if self.settings.warmup:
            await loop.run_in_executor(self.executor, self._warmup, self._predictor)
        if self.batcher is not None:
            await self.batcher.start()
        self.status = "ok"
        log.info("serving %s", self._predictor.info.label)

    async def shutdown(self) -> None:
        """Stop background work and the worker threads."""
        if self.watcher_task is not None:
            self.watcher_task.cancel()
        if self.batcher is not None:
            await self.batcher.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _warmup(predictor: Predictor) -> None:
        """One answer through every stage, and the lexical index for timeout fallbacks."""
        try:
            predictor.answer(["What is a neural network?"])
            if predictor.bank is not None:
                predictor.bank.lexical(["warm up"])
        except Exception:  # noqa: BLE001 -- a failing warm-up is logged, not fatal
            log.exception("warm-up failed")

    # -- the predictor --------------------------------------------------------------------
    @property
    def loaded(self) -> Predictor | None:
        """The current predictor, or None while loading."""
        return self._predictor

    @property
    def predictor(self) -> Predictor:
        """The model serving new requests."""
        if self._predictor is None:
            raise HTTPException(503, "the model is still loading")
        return self._predictor

    def swap(self, new: Predictor) -> None:
        """Serve ``new`` from now on (requests in flight keep the old one)."""
        old = self._predictor
        self._predictor = new
        self.metrics.set_model(new.info)
        self.metrics.swaps.inc()
        log.info("model swapped: %s -> %s", old.info.label if old else None, new.info.label)

    # -- calls ----------------------------------------------------------------------------
    async def call(self, fn: Callable, *args: Any) -> Any:
        """Run ``fn(*args)`` in the worker pool under the per-request timeout (504 past it)."""
        loop = asyncio.get_running_loop()
        timeout = self.settings.request_timeout_s
        try:
            return await asyncio.wait_for(loop.run_in_executor(self.executor, fn, *args), timeout)
        except TimeoutError:
            self.metrics.timeouts.inc()
            message = f"no result within the per-request timeout of {timeout:g} s"
            raise HTTPException(504, message) from None

    async def answer(
        self, questions: list[str], predictor: Predictor | None = None
    ) -> list[Answer]:
        """Answers for ``questions``; past the timeout, phrase-bank answers (or a 504); with
        the micro-batch queue full, phrase-bank answers at once (or a 503 with Retry-After).
        ``latency_ms`` is the time from this call to its answer, queueing included.

        Invalid text (lone surrogates) is a 422 here too, whatever route sent it: it never
        reaches the model, nor a micro-batch shared with other requests."""
        start = time.perf_counter()
        bad = first_text_problem(questions)
        if bad is not None:
            raise HTTPException(422, f"question {bad[0]}: {bad[1]}")
        predictor = predictor or self.predictor
        timeout = self.settings.request_timeout_s
        try:
            if self.batcher is not None and len(questions) < self.settings.micro_batch:
                job = self.batcher.submit(predictor, questions)
            else:
                job = asyncio.get_running_loop().run_in_executor(
                    self.executor, predictor.answer, questions
                )
            answers = await asyncio.wait_for(job, timeout)
        except TimeoutError:
            self.metrics.timeouts.inc()
            answers = self._bank_answers(predictor, questions, None)
            if answers is None:
                raise HTTPException(
                    504, f"no answer within the per-request timeout of {timeout:g} s"
                ) from None
        except Overloaded as exc:
            answers = self._bank_answers(predictor, questions, f"overloaded: {exc}")
            if answers is None:
                retry = str(max(1, math.ceil(timeout)))  # a full queue drains within the timeout
                raise HTTPException(
                    503, f"server overloaded: {exc}", headers={"Retry-After": retry}
                ) from None
        except StageError as exc:  # only with fallback disabled
            raise HTTPException(503, f"model failed and the fallback is disabled: {exc}") from exc
        ms = (time.perf_counter() - start) * 1000.0
        answers = [dataclasses.replace(a, latency_ms=max(a.latency_ms, ms)) for a in answers]
        self.metrics.observe_answers(answers)
        return answers

    def _bank_answers(
        self, predictor: Predictor, questions: list[str], reason: str | None
    ) -> list[Answer] | None:
        """Phrase-bank answers without a model call (``reason`` replaces the timeout's)."""
        answers = predictor.timeout_answers(questions, self.settings.request_timeout_s)
        if answers is None or reason is None:
            return answers
        return [dataclasses.replace(a, fallback_reason=reason) for a in answers]
