"""What one running service holds: settings, the current predictor, metrics, feedback, workers.

Route handlers get this object from ``app.state.service`` and never touch torch: every
model call goes through :meth:`Service.answer` / :meth:`Service.call`, which run the
predictor in a thread pool under the per-request timeout. A request past its timeout, or
refused by a full micro-batch queue, gets phrase-bank answers (or a 504 / 503), and every
answer reports the time the request waited for it (``latency_ms``).

The predictor is swapped by assigning one attribute (:meth:`Service.swap`): a request
reads ``service.predictor`` once at its start and keeps that object to the end, so a swap
never disturbs requests in flight, and the old model is freed when the last one finishes.

The model loads in a daemon thread while the port is already open (``/health`` and every
model route answer 503 until it is ready), so SIGTERM during a long load (a phrase-bank
build) ends the process at once. Registry calls (:meth:`Service.registry`) run on a pool
of their own, two threads, at most :data:`REGISTRY_QUEUE` calls at a time, each under
``$CELLTEXT_REGISTRY_TIMEOUT_S`` (default 10 s): a registry that hangs costs a 503 or a
``registry_error``, never a predictor thread or a feedback write.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from prometheus_client import Counter, Gauge

from celltext.inference import registry_client
from celltext.inference.factory import load_predictor
from celltext.inference.options import BankConfig, PredictorConfig
from celltext.inference.predictor import Answer, Predictor, StageError
from celltext.registry.errors import RegistryUnavailable
from celltext.serving.batching import MicroBatcher, Overloaded
from celltext.serving.feedback import FeedbackStore
from celltext.serving.metrics import ServiceMetrics
from celltext.serving.settings import ServingSettings
from celltext.textcheck import first_text_problem

log = logging.getLogger(__name__)

PredictorFactory = Callable[[ServingSettings], Predictor]
REGISTRY_THREADS = 2
REGISTRY_QUEUE = 8
"""Most registry calls running or waiting at once; more are refused at once (503)."""


def registry_timeout_s() -> float:
    """Deadline of one registry call from a route or the watcher, in seconds
    (``$CELLTEXT_REGISTRY_TIMEOUT_S``, default 10)."""
    return float(os.environ.get("CELLTEXT_REGISTRY_TIMEOUT_S") or 10.0)


def default_predictor_factory(settings: ServingSettings) -> Predictor:
    """Load the configured model (``settings.model``) with torch threads set. A registry
    reference is resolved first and that version loaded, labelled ``name/version``."""
    import torch

    torch.set_num_threads(settings.torch_threads)
    config = PredictorConfig(bank=BankConfig(release=settings.release))
    ref = settings.model
    pinned = None if ref is None or Path(ref).exists() else registry_client.resolve(ref)
    load_ref = f"{pinned[0]}/{pinned[1]}" if pinned else ref
    predictor = load_predictor(
        load_ref, fallback=settings.fallback, threshold=settings.threshold, config=config
    )
    if pinned:
        label_registered(predictor, *pinned)
    return predictor


def backend_name(predictor: Any) -> str:
    """The runtime serving ``predictor``: ``torch``, ``onnxruntime`` or ``none`` (retrieval)."""
    return getattr(getattr(predictor, "backend", None), "name", None) or "none"


def label_registered(predictor: Predictor, name: str, version: int | str) -> None:
    """Name a predictor after the registry version it was loaded from (an export's manifest
    keeps whatever name the export was built under); ``+onnx`` marks onnxruntime."""
    suffix = "+onnx" if backend_name(predictor) == "onnxruntime" else ""
    predictor.info.name, predictor.info.version = name, f"{version}{suffix}"


def model_identity(info: Any) -> tuple[str, str]:
    """``(name, version)`` of a served model, whatever runtime serves it."""
    return info.name, str(info.version).removesuffix("+onnx")


async def run_in_daemon_thread(fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` in a daemon thread of its own: awaiting it can be cancelled, and a
    process asked to stop does not wait for it (a model load, a phrase-bank build)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the awaiting task was cancelled (shutdown)
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # noqa: BLE001 -- handed to the awaiting task
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    threading.Thread(target=target, name=f"celltext-{fn.__name__}", daemon=True).start()
    return await future


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
        self.loader_task: asyncio.Task | None = None
        self.registry_pool = ThreadPoolExecutor(
            REGISTRY_THREADS, thread_name_prefix="celltext-registry"
        )
        self.registry_timeout_s = registry_timeout_s()
        self._registry_calls = 0
        r = self.metrics.registry
        self.backend_gauge = Gauge(
            "celltext_model_backend", "The runtime serving the model (value 1).", ["backend"],
            registry=r,
        )  # fmt: skip
        self.swaps_refused = Counter(
            "celltext_model_swaps_refused", "Champion versions not swapped in, by reason.",
            ["reason"], registry=r,
        )  # fmt: skip

    # -- lifecycle ------------------------------------------------------------------------
    async def startup(self) -> None:
        """Load the model (in a daemon thread), warm it up, start the batcher; requests reach
        the model only then. The app runs this as a background task, with the port open."""
        ready = self._predictor
        self._predictor, self.status = None, "loading"  # every model route 503 until warm
        predictor = await run_in_daemon_thread(self._prepare, ready)
        if self.batcher is not None:
            await self.batcher.start()
        self._predictor = predictor
        self._show(predictor)
        self.status = "ok"
        log.info("serving %s on %s", predictor.info.label, backend_name(predictor))

    def _prepare(self, predictor: Predictor | None) -> Predictor:
        """The model (loaded with the factory unless given), warmed up."""
        if predictor is None:
            predictor = self.factory(self.settings)
        if self.settings.warmup:
            self._warmup(predictor)
        return predictor

    async def shutdown(self) -> None:
        """Stop background work (a load in progress included) and the worker threads."""
        for task in (self.watcher_task, self.loader_task):
            if task is not None:
                task.cancel()
        if self.batcher is not None:
            await self.batcher.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.registry_pool.shutdown(wait=False, cancel_futures=True)

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
        """The model serving new requests (503 while it loads, or after it failed to)."""
        if self._predictor is None:
            if self.status == "error":
                raise HTTPException(503, f"no model: {self.error}")
            raise HTTPException(503, "the model is still loading", headers={"Retry-After": "5"})
        return self._predictor

    def swap(self, new: Predictor) -> None:
        """Serve ``new`` from now on (requests in flight keep the old one)."""
        old = self._predictor
        self._predictor = new
        self._show(new)
        self.metrics.swaps.inc()
        log.info(
            "model swapped: %s -> %s (on %s)",
            old.info.label if old else None, new.info.label, backend_name(new),
        )  # fmt: skip

    def _show(self, predictor: Predictor) -> None:
        """The served model and its runtime in ``/metrics``."""
        self.metrics.set_model(predictor.info)
        self.backend_gauge.clear()
        self.backend_gauge.labels(backend=backend_name(predictor)).set(1)

    # -- the registry ---------------------------------------------------------------------
    async def registry(self, fn: Callable, *args: Any) -> Any:
        """``fn(*args)``, a registry call, on the registry's own pool under its deadline;
        past it, or with :data:`REGISTRY_QUEUE` calls already pending, RegistryUnavailable."""
        if self._registry_calls >= REGISTRY_QUEUE:
            raise RegistryUnavailable(
                f"model registry unavailable: {REGISTRY_QUEUE} registry calls already waiting"
            )
        self._registry_calls += 1
        loop = asyncio.get_running_loop()
        try:
            call = loop.run_in_executor(self.registry_pool, fn, *args)
            return await asyncio.wait_for(call, self.registry_timeout_s)
        except TimeoutError:
            raise RegistryUnavailable(
                f"model registry unavailable: no answer within {self.registry_timeout_s:g} s"
            ) from None
        finally:
            self._registry_calls -= 1

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
