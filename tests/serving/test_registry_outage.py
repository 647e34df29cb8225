"""The service when the model registry cannot answer (hardening issue, item 4): registry calls
run on a small pool of their own under a deadline, so ``GET /v1/models`` answers within
seconds, promote and rollback say 503 (not 404), and feedback never waits on the registry."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient

from celltext.inference import registry_client
from celltext.inference.records import Answer, ModelInfo
from celltext.serving.app import create_app
from celltext.serving.settings import ServingSettings

ADMIN = {"Authorization": "Bearer s3cret"}
FEEDBACK = {"question": "What is RAM?", "answer": "Memory.", "rating": "up"}


class StubPredictor:
    info = ModelInfo("stub", "1")
    bank = None
    backend = None

    def answer(self, questions):
        return [Answer(q, "a", 0.9, False, None, 1.0, "stub/1") for q in questions]

    def timeout_answers(self, questions, timeout_s):
        return None


def _app(tmp_path):
    settings = ServingSettings(
        feedback_db=str(tmp_path / "fb.sqlite3"), warmup=False, micro_batch=1,
        registry_name="m", admin_token="s3cret",
    )  # fmt: skip
    return create_app(settings, predictor=StubPredictor())


def test_a_hanging_registry_never_delays_feedback(tmp_path, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(registry_client, "list_versions", lambda name: release.wait(60) and [])
    monkeypatch.setenv("CELLTEXT_REGISTRY_TIMEOUT_S", "1")
    app = _app(tmp_path)

    async def scenario():
        # asyncio's default pool, as small as on a 2-core machine (min(32, cores + 4))
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(6))
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    start = time.perf_counter()
                    listings = [asyncio.create_task(client.get("/v1/models")) for _ in range(8)]
                    await asyncio.sleep(0.2)  # all eight are waiting on the registry now
                    feedback = await asyncio.wait_for(client.post("/v1/feedback", json=FEEDBACK), 5)
                    feedback_s = time.perf_counter() - start - 0.2
                    listed = await asyncio.wait_for(asyncio.gather(*listings), 10)
                    return feedback, feedback_s, listed, time.perf_counter() - start
        finally:
            release.set()

    feedback, feedback_s, listed, listed_s = asyncio.run(scenario())
    assert feedback.status_code == 200 and feedback_s < 2
    assert listed_s < 5  # the deadline (1 s), not the registry's own ~4 min of retries
    for r in listed:
        body = r.json()
        assert r.status_code == 200 and body["current"]["label"] == "stub/1"
        assert body["registry_error"].startswith("model registry unavailable")


def test_promote_and_rollback_answer_503_when_the_registry_is_unreachable(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")  # connection refused
    for var in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.delenv(var, raising=False)  # MLflow's defaults: ~4 min, unless limited
    with TestClient(_app(tmp_path)) as client:
        start = time.perf_counter()
        promoted = client.post("/v1/models/m/promote", json={"version": "1"}, headers=ADMIN)
        rolled = client.post("/v1/models/m/rollback", headers=ADMIN)
        listed = client.get("/v1/models").json()
        elapsed = time.perf_counter() - start
    for r in (promoted, rolled):
        assert r.status_code == 503, r.text
        assert r.json()["detail"].startswith("model registry unavailable")
        assert r.headers.get("retry-after")
    assert listed["registry_error"].startswith("model registry unavailable")
    assert "127.0.0.1" not in listed["registry_error"]  # anonymous callers: no server details
    assert elapsed < 30


def test_unknown_versions_are_still_404(tmp_path, monkeypatch):
    from celltext.registry.models import ModelRegistry, RegistryNotFound

    def missing(self, name, version, alias="champion"):
        raise RegistryNotFound(f"no model version {name}/{version}")

    monkeypatch.setattr(ModelRegistry, "__init__", lambda self, client=None: None)
    monkeypatch.setattr(ModelRegistry, "promote", missing)
    with TestClient(_app(tmp_path)) as client:
        r = client.post("/v1/models/m/promote", json={"version": "7"}, headers=ADMIN)
    assert r.status_code == 404 and "no model version m/7" in r.json()["detail"]
