"""Invalid text at the HTTP boundary (issue 14, items 1 and 9): a lone surrogate is a 422
naming the field on every route, error bodies never crash nor echo megabytes, and a
poisoned request never changes the answers of the requests batched beside it."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_tiny import PAIRS

from celltext.serving.app import create_app
from celltext.serving.batching import MicroBatcher
from celltext.serving.settings import ServingSettings

BAD = "abc \ud800 def"
TOKEN = "s3cret"
# (path, body with BAD in one string field, where the error must point)
ROUTES = [
    ("/v1/answer", {"question": BAD}, ["body", "question"]),
    ("/v1/answer/batch", {"questions": ["What is RAM?", BAD]}, ["body", "questions", 1]),
    ("/v1/activity", {"question": BAD}, ["body", "question"]),
    ("/v1/embed", {"texts": [BAD]}, ["body", "texts", 0]),
    ("/v1/feedback", {"question": BAD, "answer": "a", "rating": "up"}, ["body", "question"]),
    ("/v1/feedback", {"question": "q", "answer": BAD, "rating": "up"}, ["body", "answer"]),
    ("/v1/feedback", {"question": "q", "answer": "a", "rating": "up", "comment": BAD},
     ["body", "comment"]),
    ("/v1/models/m/promote", {"version": BAD}, ["body", "version"]),
]  # fmt: skip


def _settings(tmp_path, **kw) -> ServingSettings:
    base = {"feedback_db": str(tmp_path / "fb.sqlite3"), "warmup": False, "max_batch": 8,
            "max_question_chars": 200, "max_body_bytes": 2_000_000,
            "admin_token": TOKEN}  # fmt: skip
    return ServingSettings(**{**base, **kw})


@pytest.fixture
def client(predictor, tmp_path):
    with TestClient(create_app(_settings(tmp_path), predictor=predictor)) as c:
        yield c


def _post(client, path, body):
    # json.dumps writes the surrogate as the escape "\ud800", exactly what curl sent
    return client.post(path, content=json.dumps(body), headers={
        "content-type": "application/json", "authorization": f"Bearer {TOKEN}"})  # fmt: skip


@pytest.mark.parametrize(("path", "body", "loc"), ROUTES)
def test_lone_surrogate_is_422_naming_the_field(client, path, body, loc):
    r = _post(client, path, body)
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == loc and "unicode" in error["msg"].lower()
    assert "\\ud800" in r.text or "input" not in error  # echoed escaped, if at all


def test_surrogate_in_a_key_or_nested_value_is_a_clean_422(client):
    r = _post(client, "/v1/answer", {"question": "ok", "\udc80": [BAD]})
    assert r.status_code == 422 and "\\udc80" in r.text


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    route=st.sampled_from(ROUTES),
    prefix=st.text(max_size=20),
    surrogate=st.integers(0xD800, 0xDFFF).map(chr),
)
def test_any_text_with_a_surrogate_is_refused_everywhere(client, route, prefix, surrogate):
    path, body, loc = route
    text = prefix + surrogate + "x"
    poisoned = json.loads(json.dumps(body).replace(json.dumps(BAD)[1:-1], json.dumps(text)[1:-1]))
    r = _post(client, path, poisoned)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc


def test_error_bodies_are_bounded(client):
    huge = {"question": "x" * 100_001, "extra": ["y" * 1000] * 500}  # both were echoed whole
    r = _post(client, "/v1/answer", huge)
    assert r.status_code == 422 and len(r.content) < 20_000


def test_keep_alive_connection_survives_a_poisoned_request(predictor, tmp_path, live_server):
    url = urlparse(live_server(create_app(_settings(tmp_path), predictor=predictor)))
    con = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"content-type": "application/json"}
    con.request("POST", "/v1/answer", json.dumps({"question": BAD}), headers)
    first = con.getresponse()
    assert first.status == 422 and "unicode" in first.read().decode()
    con.request("POST", "/v1/answer", json.dumps({"question": PAIRS[0][0]}), headers)
    second = con.getresponse()
    assert second.status == 200 and json.loads(second.read())["answer"] == PAIRS[0][1]
    con.close()


def test_poisoned_batches_never_change_clean_answers(predictor, tmp_path):
    """Clean single requests share micro-batches with poisoned batch requests."""
    app = create_app(_settings(tmp_path, micro_batch=16, batch_wait_ms=20.0), predictor=predictor)
    clean, poisoned = {}, []
    with TestClient(app) as c:

        def ask(i):
            q, _ = PAIRS[i % len(PAIRS)]
            clean[i] = _post(c, "/v1/answer", {"question": q}).json()

        def poison():
            poisoned.append(_post(c, "/v1/answer/batch", {"questions": [BAD, "x"]}).status_code)
            poisoned.append(_post(c, "/v1/answer", {"question": BAD}).status_code)

        for _ in range(3):
            threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
            threads += [threading.Thread(target=poison) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert all(clean[i]["answer"] == PAIRS[i % len(PAIRS)][1] for i in range(8))
            assert not any(clean[i]["fallback"] for i in range(8))
    assert poisoned and set(poisoned) == {422}


class _Picky:
    """A predictor that fails any batch holding a question with 'BAD' in it."""

    def answer(self, questions):
        if any("BAD" in q for q in questions):
            raise ValueError("bad question in the batch")
        return [q.upper() for q in questions]


async def _through_batcher(predictor, batches: list[list[str]]) -> list:
    batcher = MicroBatcher(ThreadPoolExecutor(1), max_batch=16, max_wait_s=0.05)
    await batcher.start()
    try:
        jobs = [batcher.submit(predictor, qs) for qs in batches]
        return await asyncio.gather(*jobs, return_exceptions=True)
    finally:
        await batcher.stop()


def test_a_failing_job_fails_alone_in_its_batch():
    results = asyncio.run(_through_batcher(_Picky(), [["a"], ["BAD"], ["b", "c"]]))
    assert results[0] == ["A"] and results[2] == ["B", "C"]
    assert isinstance(results[1], ValueError)


def test_the_batcher_refuses_invalid_text_before_queueing():
    (result,) = asyncio.run(_through_batcher(_Picky(), [["ok", BAD]]))
    assert isinstance(result, ValueError) and "question 1: invalid text" in str(result)
