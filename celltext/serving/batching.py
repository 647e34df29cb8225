"""Dynamic micro-batching of answer requests.

Concurrent ``/v1/answer`` requests are queued; a collector takes as many queued questions
as are waiting (up to ``max_batch``), waits at most ``max_wait_s`` for more, and runs them
as one ``predictor.answer`` batch in the worker pool. With idle workers a request starts
at once; under load the queue fills while the workers are busy and batches grow by
themselves, which is where the throughput comes from (a batch of 16 through the teacher,
core and decoder costs far less than 16 single calls on a CPU).

Each job carries the predictor it was submitted with, and a batch holds jobs of one
predictor only: after an automatic model swap, requests already queued finish on the
model they started with.

Abandoned work is bounded: a job whose caller stopped waiting (its timeout cancelled the
``submit`` call) leaves the queue at once and never reaches the model, so after a burst of
timeouts at most the batches already running (one per worker) are still computed. The
queue holds at most ``max_queue`` questions; past that :meth:`MicroBatcher.submit` raises
:class:`Overloaded` at once instead of queueing work that could not finish in time.

One request must never change another's answer: :meth:`MicroBatcher.submit` refuses text
that is not valid Unicode before it is queued, and when a shared batch raises, each of its
jobs is re-run on its own so that the error reaches only the job that caused it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass

from celltext.textcheck import first_text_problem

log = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    """The queue already holds ``max_queue`` questions; the job was not queued."""


@dataclass(eq=False)
class _Job:
    predictor: object
    questions: list[str]
    future: asyncio.Future
    queued: bool = True


class MicroBatcher:
    """Collects answer jobs into batches and runs them on ``executor``."""

    def __init__(
        self,
        executor: Executor,
        max_batch: int = 16,
        max_wait_s: float = 0.002,
        concurrency: int = 1,
        max_queue: int = 256,
    ):
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.concurrency = concurrency
        self.max_queue = max_queue
        self._queue: deque[_Job] = deque()
        self._queued = 0  # questions in _queue
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._slots: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task] = set()
        self.batches = 0
        self.dropped = 0
        """Questions whose caller gave up before their batch started (never computed)."""

    @property
    def queued(self) -> int:
        """Questions waiting for a batch."""
        return self._queued

    async def start(self) -> None:
        """Start the collector (inside the running event loop)."""
        self._ready = asyncio.Event()
        self._slots = asyncio.Semaphore(self.concurrency)
        self._task = asyncio.create_task(self._collect(), name="celltext-batcher")

    async def stop(self) -> None:
        """Stop collecting; running batches finish."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def submit(self, predictor, questions: list[str]) -> list:
        """Answers of ``questions`` from ``predictor`` (batched with concurrent requests).

        Raises :class:`Overloaded` when the queue is full. Cancelling the call (a timeout)
        takes the job out of the queue, so the model never computes it."""
        if self._ready is None:
            raise RuntimeError("batcher not started")
        bad = first_text_problem(questions)
        if bad is not None:
            raise ValueError(f"question {bad[0]}: {bad[1]}")
        if self._queued + len(questions) > self.max_queue:
            raise Overloaded(
                f"{self._queued} questions already waiting, the queue limit is {self.max_queue}"
            )
        job = _Job(predictor, list(questions), asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self._queued += len(job.questions)
        self._ready.set()
        try:
            return await job.future
        finally:
            if job.queued:  # the caller gave up while the job was still waiting
                self._queue.remove(job)
                self._unqueue(job)
                self.dropped += len(job.questions)

    def _unqueue(self, job: _Job) -> None:
        job.queued = False
        self._queued -= len(job.questions)

    async def _next(self) -> _Job:
        """The oldest waiting job (waits for one)."""
        assert self._ready is not None
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        job = self._queue.popleft()
        self._unqueue(job)
        return job

    async def _collect(self) -> None:
        assert self._slots is not None
        while True:
            await self._slots.acquire()  # jobs stay queued (and cancellable) while workers are busy
            jobs = [await self._next()]
            size = len(jobs[0].questions)
            if self.max_wait_s > 0 and size < self.max_batch:
                await asyncio.sleep(self.max_wait_s)  # let concurrent requests join
            while self._queue and size < self.max_batch:
                job = self._queue[0]
                if job.predictor is not jobs[0].predictor:
                    break  # next batch: a different model
                if size + len(job.questions) > self.max_batch:
                    break  # next batch: no room
                self._queue.popleft()
                self._unqueue(job)
                jobs.append(job)
                size += len(job.questions)
            task = asyncio.create_task(self._run(jobs))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, jobs: list[_Job]) -> None:
        assert self._slots is not None
        try:
            live = [j for j in jobs if not j.future.done()]  # callers that gave up meanwhile
            self.dropped += sum(len(j.questions) for j in jobs if j.future.done())
            if not live:
                return
            predictor = live[0].predictor
            questions = [q for j in live for q in j.questions]
            loop = asyncio.get_running_loop()
            try:
                answers = await loop.run_in_executor(self.executor, predictor.answer, questions)
            except Exception as exc:  # noqa: BLE001 -- handed to the job(s) that caused it
                await self._run_alone(live, exc)
                return
            self.batches += 1
            start = 0
            for j in live:
                part = answers[start : start + len(j.questions)]
                start += len(j.questions)
                if not j.future.done():
                    j.future.set_result(part)
        finally:
            self._slots.release()

    async def _run_alone(self, jobs: list[_Job], exc: Exception) -> None:
        """After a failed shared batch: each job on its own, so one bad job fails alone."""
        if len(jobs) == 1:
            if not jobs[0].future.done():
                jobs[0].future.set_exception(exc)
            return
        log.warning("a batch of %d jobs failed (%s); re-running them one by one", len(jobs), exc)
        loop = asyncio.get_running_loop()
        for j in jobs:
            if j.future.done():
                continue  # the caller gave up waiting
            try:
                part = await loop.run_in_executor(self.executor, j.predictor.answer, j.questions)
            except Exception as job_exc:  # noqa: BLE001 -- this job's own error
                if not j.future.done():
                    j.future.set_exception(job_exc)
                continue
            if not j.future.done():
                j.future.set_result(part)
