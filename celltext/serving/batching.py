"""Dynamic micro-batching of answer requests.

Concurrent ``/v1/answer`` requests are queued; a collector takes as many queued questions
as are waiting (up to ``max_batch``), waits at most ``max_wait_s`` for more, and runs them
as one ``predictor.answer`` batch in the worker pool. With idle workers a request starts
at once; under load the queue fills while the workers are busy and batches grow by
themselves, which is where the throughput comes from (a batch of 16 through the teacher,
core and decoder costs far less than 16 single calls on a CPU).

Each job carries the predictor it was submitted with, and a batch holds jobs of one
predictor only: after an automatic model swap, requests already queued finish on the
model they started with. A job whose caller stopped waiting (timeout) is still computed
with its batch, but its result is dropped.

One request must never change another's answer: :meth:`MicroBatcher.submit` refuses text
that is not valid Unicode before it is queued, and when a shared batch raises, each of its
jobs is re-run on its own so that the error reaches only the job that caused it.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass

from celltext.textcheck import first_text_problem

log = logging.getLogger(__name__)


@dataclass
class _Job:
    predictor: object
    questions: list[str]
    future: asyncio.Future


class MicroBatcher:
    """Collects answer jobs into batches and runs them on ``executor``."""

    def __init__(
        self,
        executor: Executor,
        max_batch: int = 16,
        max_wait_s: float = 0.002,
        concurrency: int = 1,
    ):
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.concurrency = concurrency
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._slots: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task] = set()
        self.batches = 0

    async def start(self) -> None:
        """Start the collector (inside the running event loop)."""
        self._queue = asyncio.Queue()
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
        """Answers of ``questions`` from ``predictor`` (batched with concurrent requests)."""
        if self._queue is None:
            raise RuntimeError("batcher not started")
        bad = first_text_problem(questions)
        if bad is not None:
            raise ValueError(f"question {bad[0]}: {bad[1]}")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(predictor, list(questions), future))
        return await future

    async def _collect(self) -> None:
        assert self._queue is not None and self._slots is not None
        carry: list[_Job] = []
        while True:
            await self._slots.acquire()
            jobs = carry or [await self._queue.get()]
            carry = []
            size = sum(len(j.questions) for j in jobs)
            if self.max_wait_s > 0 and size < self.max_batch:
                await asyncio.sleep(self.max_wait_s)  # let concurrent requests join
            while size < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                same = job.predictor is jobs[0].predictor
                if not same or size + len(job.questions) > self.max_batch:
                    carry.append(job)  # next batch (different model, or no room)
                    break
                jobs.append(job)
                size += len(job.questions)
            task = asyncio.create_task(self._run(jobs))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, jobs: list[_Job]) -> None:
        assert self._slots is not None
        try:
            predictor = jobs[0].predictor
            questions = [q for j in jobs for q in j.questions]
            loop = asyncio.get_running_loop()
            try:
                answers = await loop.run_in_executor(self.executor, predictor.answer, questions)
            except Exception as exc:  # noqa: BLE001 -- handed to the job(s) that caused it
                await self._run_alone(jobs, exc)
                return
            self.batches += 1
            start = 0
            for j in jobs:
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
