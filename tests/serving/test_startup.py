"""Start-up and shutdown as documented (hardening issue, item 13): the port opens before the
model is loaded, ``/health`` answers 503 ``loading`` meanwhile (the other model routes 503
too), and SIGTERM during a long load (a phrase-bank build) stops the process promptly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from celltext.inference.records import Answer, ModelInfo
from celltext.serving.app import create_app
from celltext.serving.settings import ServingSettings

SERVER = """
import sys, time
import uvicorn
from celltext.serving.app import create_app
from celltext.serving.settings import ServingSettings

def slow_factory(settings):
    time.sleep(300)  # a phrase-bank build that takes minutes
    raise RuntimeError("unreachable")

settings = ServingSettings(feedback_db=sys.argv[2], warmup=False)
app = create_app(settings, predictor_factory=slow_factory)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _first_answer(url: str, seconds: float) -> httpx.Response | None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    return None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_port_opens_while_loading_and_sigterm_stops_promptly(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port), str(tmp_path / "fb.sqlite3")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        health = _first_answer(f"http://127.0.0.1:{port}/health", 45)
        assert health is not None, "the port stayed closed while the model loads"
        assert health.status_code == 503 and health.json()["status"] == "loading"
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/answer", json={"question": "hi"})
        assert answer.status_code == 503 and "loading" in answer.json()["detail"]
        assert answer.headers.get("retry-after")
        proc.send_signal(signal.SIGTERM)
        start = time.time()
        proc.wait(timeout=20)
        assert time.time() - start < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class ReadyPredictor:
    info = ModelInfo("late", "1")
    bank = None
    backend = None

    def answer(self, questions):
        return [Answer(q, "a", 0.9, False, None, 1.0, "late/1") for q in questions]

    def timeout_answers(self, questions, timeout_s):
        return None


def test_health_turns_ok_once_loaded_and_error_when_the_load_fails(tmp_path):
    release = threading.Event()

    def factory(settings):
        release.wait(30)
        return ReadyPredictor()

    def broken(settings):
        raise FileNotFoundError("no checkpoint at /nowhere")

    async def scenario(factory):
        app = create_app(
            ServingSettings(feedback_db=str(tmp_path / "fb.sqlite3"), warmup=False),
            predictor_factory=factory,
        )
        seen = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                seen.append((await client.get("/health")).json()["status"])
                release.set()
                for _ in range(200):
                    body = (await client.get("/health")).json()
                    if body["status"] != "loading":
                        break
                    await asyncio.sleep(0.05)
                seen.append(body)
                seen.append((await client.post("/v1/answer", json={"question": "q"})).status_code)
        return seen

    loading, ready, code = asyncio.run(scenario(factory))
    assert loading == "loading" and ready["status"] == "ok" and ready["model"] == "late/1"
    assert code == 200
    loading, failed, code = asyncio.run(scenario(broken))
    assert failed["status"] == "error" and "FileNotFoundError" in failed["detail"]
    assert "/nowhere" not in failed["detail"]  # anonymous callers: no server paths
    assert code == 503
