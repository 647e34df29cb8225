"""Timeouts, overload and slow uploads (issue 14, item 8): abandoned work never reaches the
model, timeout answers report their real latency, a full queue answers at once, and a body
trickled in too slowly is cut off with a 408."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

from celltext.inference.records import Answer, ModelInfo
from celltext.serving.app import create_app
from celltext.serving.settings import ServingSettings


class SlowPredictor:
    """Sleeps ``delay`` seconds per batch and counts the questions it actually computed."""

    info = ModelInfo("slow", "1")
    bank = None

    def __init__(self, delay: float, fallback: bool = True, gated: bool = False):
        self.delay = delay
        self.fallback = fallback
        self.computed = 0
        self.lock = threading.Lock()
        # gated: a batch waits for ``gate`` instead of sleeping, so a test decides when the
        # running batch ends (a sleep can end early on a busy machine); ``started`` is set
        # when the first batch begins
        self.gate = threading.Event() if gated else None
        self.started = threading.Event()

    def answer(self, questions):
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10.0)
        else:
            time.sleep(self.delay)
        with self.lock:
            self.computed += len(questions)
        return [Answer(q, "model", 0.9, False, None, 1.0, "slow/1") for q in questions]

    def timeout_answers(self, questions, timeout_s):
        if not self.fallback:
            return None
        reason = f"timeout: no answer within {timeout_s:g} s"
        return [Answer(q, "bank", 0.5, True, reason, 0.0, "slow/1") for q in questions]


def _settings(tmp_path, **kw) -> ServingSettings:
    base = {"feedback_db": str(tmp_path / "fb.sqlite3"), "warmup": False, "workers": 1}
    return ServingSettings(**{**base, **kw})


async def _post_many(app, n: int, stagger_s: float = 0.0) -> list[httpx.Response]:
    """``n`` concurrent ``/v1/answer`` posts through the real app (lifespan included)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def post(i: int) -> httpx.Response:
                await asyncio.sleep(stagger_s * i)
                return await client.post("/v1/answer", json={"question": f"question {i}"})

            responses = await asyncio.gather(*(post(i) for i in range(n)))
            service = app.state.service
            drained = time.perf_counter()
            while service.batcher is not None and service.batcher._running:
                await asyncio.sleep(0.01)  # the batch already running when clients gave up
            app.state.drain_s = time.perf_counter() - drained
    return responses


@pytest.mark.parametrize("micro_batch", [1, 4])
def test_abandoned_requests_are_never_computed(tmp_path, micro_batch):
    slow = SlowPredictor(delay=0.3)
    settings = _settings(tmp_path, request_timeout_s=0.05, micro_batch=micro_batch)
    app = create_app(settings, predictor=slow)
    responses = asyncio.run(_post_many(app, 24))
    bodies = [r.json() for r in responses]
    assert all(b["fallback"] and b["fallback_reason"].startswith("timeout") for b in bodies)
    # every request timed out; only the one batch that had started is computed
    assert slow.computed <= micro_batch < 24
    assert app.state.drain_s < 0.5
    batcher = app.state.service.batcher
    if batcher is not None:
        assert batcher.queued == 0 and batcher.dropped >= 24 - micro_batch


def test_timeout_answers_report_the_real_latency(tmp_path):
    slow = SlowPredictor(delay=0.3)
    app = create_app(_settings(tmp_path, request_timeout_s=0.05), predictor=slow)
    responses = asyncio.run(_post_many(app, 3))
    for r in responses:
        body = r.json()
        assert body["fallback_reason"].startswith("timeout")
        assert 50.0 <= body["latency_ms"] < 1000.0  # at least the timeout, never 0.0


def test_answers_report_their_time_in_the_queue(tmp_path):
    slow = SlowPredictor(delay=0.1)
    settings = _settings(tmp_path, request_timeout_s=5.0, micro_batch=2, batch_wait_ms=0)
    responses = asyncio.run(_post_many(create_app(settings, predictor=slow), 4))
    latencies = sorted(r.json()["latency_ms"] for r in responses)
    assert all(not r.json()["fallback"] for r in responses)
    assert latencies[-1] >= 190.0  # the last batch waited for the first one (2 x 0.1 s)


async def _fill_queue(app, slow: SlowPredictor, n: int, refused: int) -> list[httpx.Response]:
    """Request 0 runs (held at ``slow``'s gate); requests 1..n-1 then arrive; once
    ``refused`` of them have been answered at once, the gate opens and all finish. Nothing
    depends on how fast the machine is."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            def post(i: int) -> asyncio.Task:
                body = {"question": f"question {i}"}
                return asyncio.create_task(client.post("/v1/answer", json=body))

            first = post(0)
            assert await asyncio.to_thread(slow.started.wait, 10.0)
            rest = [post(i) for i in range(1, n)]
            for _ in range(1000):  # up to 10 s
                if sum(t.done() for t in rest) >= refused:
                    break
                await asyncio.sleep(0.01)
            slow.gate.set()
            return [await first, *[await t for t in rest]]


def test_a_full_queue_answers_at_once(tmp_path):
    slow = SlowPredictor(delay=0.0, gated=True)
    settings = _settings(tmp_path, request_timeout_s=20.0, micro_batch=2, max_queue=2)
    app = create_app(settings, predictor=slow)
    # request 0 runs, two of the others wait in the queue (2 questions), three find it full
    bodies = [r.json() for r in asyncio.run(_fill_queue(app, slow, 6, refused=3))]
    overloaded = [b for b in bodies if (b["fallback_reason"] or "").startswith("overloaded")]
    assert len(overloaded) == 3
    assert all(b["latency_ms"] < 5000.0 for b in overloaded)  # never the 20 s timeout
    assert sum(not b["fallback"] for b in bodies) == 3 and slow.computed == 3


def test_a_full_queue_without_fallback_is_503_with_retry_after(tmp_path):
    slow = SlowPredictor(delay=0.0, fallback=False, gated=True)
    settings = _settings(tmp_path, request_timeout_s=20.0, micro_batch=2, max_queue=1,
                         fallback=False)  # fmt: skip
    app = create_app(settings, predictor=slow)
    responses = asyncio.run(_fill_queue(app, slow, 4, refused=2))
    refused = [r for r in responses if r.status_code == 503]
    # Retry-After: the queue drains within the request timeout (20 s)
    assert len(refused) == 2 and all(r.headers["retry-after"] == "20" for r in refused)
    assert "overloaded" in refused[0].json()["detail"]


def _scope(length: int) -> dict:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/v1/answer", "raw_path": b"/v1/answer",
            "query_string": b"", "headers": headers, "client": ("127.0.0.1", 1),
            "server": ("t", 80), "root_path": ""}  # fmt: skip


async def _call(app, chunks: list[bytes], gap_s: float) -> tuple[int, float]:
    """Send ``chunks`` ``gap_s`` apart straight into the ASGI app; (status, seconds)."""
    queue = list(chunks)
    sent: list[dict] = []

    async def receive() -> dict:
        if not queue:
            await asyncio.sleep(3600)  # the client is still connected, saying nothing
        if len(queue) < len(chunks):
            await asyncio.sleep(gap_s)
        chunk = queue.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    async def send(message: dict) -> None:
        sent.append(message)

    start = time.perf_counter()
    await asyncio.wait_for(app(_scope(sum(map(len, chunks))), receive, send), 5.0)
    return sent[0]["status"], time.perf_counter() - start


def test_a_trickled_body_is_cut_off_with_408(tmp_path):
    slow = SlowPredictor(delay=0.0)
    app = create_app(_settings(tmp_path, micro_batch=1, body_timeout_s=0.3), predictor=slow)
    body = json.dumps({"question": "What is RAM?"}).encode()
    status, seconds = asyncio.run(_call(app, [body[i : i + 1] for i in range(len(body))], 2.0))
    assert status == 408 and 0.3 <= seconds < 1.0
    status, _ = asyncio.run(_call(app, [body[:5], body[5:10], body[10:]], 0.05))
    assert status == 200  # a body that arrives in time is read as usual


def test_a_slow_upload_is_cut_off_by_the_live_server(tmp_path, live_server):
    app = create_app(_settings(tmp_path, micro_batch=1, body_timeout_s=0.3),
                     predictor=SlowPredictor(delay=0.0))  # fmt: skip
    host, port = live_server(app).removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=3.0) as sock:
        head = (f"POST /v1/answer HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json"
                "\r\ncontent-length: 40\r\n\r\n{")  # fmt: skip
        start = time.perf_counter()
        sock.sendall(head.encode())
        reply = b""
        while chunk := sock.recv(4096):  # the server closes the connection after its 408
            reply += chunk
        seconds = time.perf_counter() - start
    assert reply.startswith(b"HTTP/1.1 408") and b"not received within 0.3 s" in reply
    assert seconds < 2.0
