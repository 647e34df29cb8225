"""The HTTP service through its real app: answers, limits, admin guard, metrics, feedback."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient
from serving_tiny import PAIRS

from celltext.inference import registry_client
from celltext.serving.app import create_app
from celltext.serving.feedback import FeedbackStore
from celltext.serving.settings import ServingSettings

QUESTION, ANSWER = PAIRS[0]


def _settings(tmp_path, **kw) -> ServingSettings:
    base = {"feedback_db": str(tmp_path / "fb.sqlite3"), "warmup": False, "max_batch": 8,
            "max_question_chars": 200, "max_body_bytes": 20_000}  # fmt: skip
    return ServingSettings(**{**base, **kw})


@pytest.fixture
def client(predictor, tmp_path):
    with TestClient(create_app(_settings(tmp_path), predictor=predictor)) as c:
        yield c


def test_answer(client):
    r = client.post("/v1/answer", json={"question": QUESTION})
    assert r.status_code == 200
    body = r.json()
    assert body["answer"] == ANSWER and body["fallback"] is False
    assert body["model"] == "tiny-mlp-ret/0" and 0 <= body["confidence"] <= 1
    assert body["latency_ms"] > 0 and body["activity"] is None


def test_batch_and_embed_and_decode(client):
    r = client.post("/v1/answer/batch", json={"questions": [q for q, _ in PAIRS[:3]]})
    assert r.status_code == 200
    assert [a["answer"] for a in r.json()["answers"]] == [a for _, a in PAIRS[:3]]
    emb = client.post("/v1/embed", json={"texts": [PAIRS[1][1]]}).json()
    assert emb["dim"] == 384 and emb["teacher"] == "all-MiniLM-L6-v2"
    dec = client.post("/v1/decode", json={"embeddings": emb["embeddings"]})
    assert dec.status_code == 200 and dec.json()["texts"][0]["text"] == PAIRS[1][1]


@pytest.mark.parametrize(
    ("path", "payload", "needle"),
    [
        ("/v1/answer", {"question": ""}, "at least 1 character"),
        ("/v1/answer", {"question": "   "}, "must not be empty"),
        (
            "/v1/answer",
            {"question": "x" * 201},
            "question too long: 201 characters, the limit is 200",
        ),
        ("/v1/answer", {"question": 5}, "valid string"),
        ("/v1/answer", {"q": "hi"}, "Field required"),
        ("/v1/answer/batch", {"questions": ["a"] * 9}, "batch too large: 9 items, the limit is 8"),
        ("/v1/answer/batch", {"questions": []}, "at least 1 item"),
        ("/v1/decode", {"embeddings": [[0.0] * 10]}, "row 0 has 10 numbers, the model expects 384"),
        ("/v1/embed", {"texts": ["ok", ""]}, "question must not be empty"),
        ("/v1/feedback", {"question": "q", "answer": "a", "rating": "meh"}, "'up' or 'down'"),
        ("/v1/answer", float("inf"), '"input": "inf"'),
        ("/v1/decode", {"embeddings": [[float("nan")] * 384]}, "finite number"),
    ],
)
def test_bad_input_is_422_with_a_clear_message(client, path, payload, needle):
    body = json.dumps(payload)  # Python's json writes Infinity/NaN, as careless clients do
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert needle in json.dumps(r.json())


def test_body_too_large_is_413(client):
    big = json.dumps({"question": "x" * 30_000})
    r = client.post("/v1/answer", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "20000 bytes" in r.json()["detail"]

    def chunks():  # streamed without Content-Length: counted as it arrives
        yield b'{"question": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}'

    r = client.post("/v1/answer", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_admin_refused_without_configured_token(client):
    for path in ("/v1/models/celltext/promote", "/v1/models/celltext/rollback"):
        r = client.post(path, json={"version": "1"}, headers={"Authorization": "Bearer x"})
        assert r.status_code == 403 and "CELLTEXT_ADMIN_TOKEN" in r.json()["detail"]


def test_admin_with_token(predictor, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        registry_client, "promote",
        lambda name, version, alias: calls.append((name, version, alias)) or {"version": version},
    )  # fmt: skip
    monkeypatch.setattr(registry_client, "rollback", lambda name, alias: {"version": "3"})
    app = create_app(_settings(tmp_path, admin_token="s3cret"), predictor=predictor)
    with TestClient(app) as c:
        url = "/v1/models/celltext/promote"
        assert c.post(url, json={"version": "4"}).status_code == 401
        bad = c.post(url, json={"version": "4"}, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        ok = c.post(url, json={"version": "4"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["alias"] == "champion"
        assert calls == [("celltext", "4", "champion")]
        rb = c.post("/v1/models/celltext/rollback", headers={"Authorization": "Bearer s3cret"})
        assert rb.status_code == 200 and rb.json()["version"] == "3"


def test_models_lists_current(client):
    body = client.get("/v1/models").json()
    assert body["current"]["label"] == "tiny-mlp-ret/0"
    assert body["current"]["core"] == "mlp_v1"


def test_health_and_metrics(client):
    assert client.get("/health").json()["status"] == "ok"
    client.post("/v1/answer", json={"question": QUESTION})
    client.post("/v1/answer", json={"question": ""})
    text = client.get("/metrics").text
    assert 'celltext_requests_total{endpoint="/v1/answer",method="POST",status="200"} 1.0' in text
    assert 'celltext_requests_total{endpoint="/v1/answer",method="POST",status="422"} 1.0' in text
    assert 'celltext_answers_total{fallback="false"} 1.0' in text
    assert "celltext_request_latency_seconds_bucket" in text
    assert "celltext_answer_confidence_count 1.0" in text
    assert 'celltext_model_info{core="mlp_v1",decoder="ret_v1",name="tiny-mlp-ret"' in text


def test_feedback_is_stored_and_exported(client, tmp_path):
    r = client.post(
        "/v1/feedback",
        json={
            "question": QUESTION,
            "answer": "wrong",
            "rating": "down",
            "model": "m",
            "fallback": True,
        },
    )
    assert r.status_code == 200 and r.json()["counts"] == {"up": 0, "down": 1}
    client.post("/v1/feedback", json={"question": QUESTION, "answer": ANSWER, "rating": "up"})
    store = FeedbackStore(tmp_path / "fb.sqlite3")
    assert store.counts() == {"up": 1, "down": 1}
    out = store.export_review(tmp_path / "review.jsonl")
    (line,) = out.read_text().splitlines()
    row = json.loads(line)
    assert row["id"] == "feedback-1" and row["verdict"] == ""
    assert row["question"] == QUESTION and row["answer"] == "wrong" and "rated down" in row["note"]
    assert 'celltext_feedback_total{rating="down"} 1.0' in client.get("/metrics").text


def test_activity_endpoint(client):
    body = client.post("/v1/activity", json={"question": QUESTION}).json()
    assert body["available"] is False and "no lattice" in body["reason"]
    r = client.post("/v1/answer", json={"question": QUESTION, "include_activity": True})
    assert r.json()["activity"]["available"] is False


def test_timeout_answers_from_the_bank(predictor, tmp_path, monkeypatch):
    slow = predictor.answer
    monkeypatch.setattr(predictor, "answer", lambda qs: time.sleep(1.0) or slow(qs))
    app = create_app(_settings(tmp_path, request_timeout_s=0.2), predictor=predictor)
    with TestClient(app) as c:
        body = c.post("/v1/answer", json={"question": PAIRS[2][0]}).json()
        assert body["fallback"] is True and body["fallback_reason"].startswith("timeout")
        assert body["answer"] == PAIRS[2][1]
        assert "celltext_timeouts_total 1.0" in c.get("/metrics").text


def test_timeout_without_fallback_is_504(predictor, tmp_path, monkeypatch):
    predictor = predictor.with_config(fallback={"enabled": False})
    monkeypatch.setattr(predictor, "answer", lambda qs: time.sleep(1.0))
    settings = _settings(tmp_path, request_timeout_s=0.2, fallback=False)
    with TestClient(create_app(settings, predictor=predictor)) as c:
        r = c.post("/v1/answer", json={"question": QUESTION})
        assert r.status_code == 504 and "timeout of 0.2 s" in r.json()["detail"]


def test_failing_model_never_fails_the_request(predictor, tmp_path, monkeypatch):
    monkeypatch.setattr(predictor.backend, "core", lambda *a, **k: 1 / 0)
    with TestClient(create_app(_settings(tmp_path), predictor=predictor)) as c:
        body = c.post("/v1/answer", json={"question": QUESTION}).json()
        assert body["fallback"] and body["fallback_reason"].startswith("core_error")
        assert body["answer"] == ANSWER
        assert 'celltext_fallbacks_total{reason="core_error"} 1.0' in c.get("/metrics").text


def test_concurrent_requests_are_micro_batched(client, predictor, monkeypatch):
    answer = predictor.answer
    monkeypatch.setattr(predictor, "answer", lambda qs: time.sleep(0.05) or answer(qs))
    results = {}

    def ask(i):
        q, _ = PAIRS[i % len(PAIRS)]
        results[i] = client.post("/v1/answer", json={"question": q}).json()["answer"]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i] == PAIRS[i % len(PAIRS)][1] for i in range(16))
    batcher = client.app.state.service.batcher
    assert 1 <= batcher.batches < 16  # some requests shared a batch


def test_web_page(client):
    r = client.get("/")
    assert r.status_code == 200 and "<title>celltext</title>" in r.text
    assert client.get("/static/app.js").status_code == 200
    assert "/v1/answer" in client.get("/openapi.json").text


def test_settings_from_env():
    env = {"CELLTEXT_THRESHOLD": "0.25", "CELLTEXT_FALLBACK": "no",
           "CELLTEXT_ADMIN_TOKEN": "s3cr3t-xyz",
           "CELLTEXT_MAX_BATCH": "3", "CELLTEXT_MODEL": "retrieval"}  # fmt: skip
    s = ServingSettings.from_env(env)
    assert (s.threshold, s.fallback, s.max_batch, s.model) == (0.25, False, 3, "retrieval")
    assert (
        s.admin_enabled and "s3cr3t-xyz" not in repr(s) and s.public_dict()["admin_token"] == "set"
    )
    with pytest.raises(ValueError, match="CELLTEXT_MAX_BATCH"):
        ServingSettings.from_env({"CELLTEXT_MAX_BATCH": "many"})
    with pytest.raises(ValueError, match="threshold"):
        ServingSettings.from_env({"CELLTEXT_THRESHOLD": "2"})


def test_serve_command_builds_the_app_from_options(monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from celltext.cli import app as cli

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setenv("CELLTEXT_MAX_BATCH", "5")
    args = [
        "serve",
        "--port",
        "8123",
        "--model",
        "retrieval",
        "--threshold",
        "0.3",
        "--no-fallback",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    settings = seen["app"].state.service.settings
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    assert (settings.model, settings.threshold, settings.fallback, settings.max_batch) == (
        "retrieval", 0.3, False, 5,
    )  # fmt: skip
    bad = CliRunner().invoke(cli, ["serve"], env={"CELLTEXT_WORKERS": "zero"})
    assert bad.exit_code == 2 and "CELLTEXT_WORKERS" in bad.output
