"""Exposure and abuse (issue 14, item 9): no server paths to anonymous callers, and feedback
bounded in size, rate and total."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from celltext.serving.app import create_app
from celltext.serving.routers.feedback import RateLimiter
from celltext.serving.settings import ServingSettings

GOOD = {"question": "What is RAM?", "answer": "Memory.", "rating": "up"}


@pytest.fixture
def make_client(predictor, tmp_path):
    clients = []

    def make(**kw):
        base = {"feedback_db": str(tmp_path / "fb.sqlite3"), "warmup": False}
        c = TestClient(create_app(ServingSettings(**{**base, **kw}), predictor=predictor))
        clients.append(c.__enter__())
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_models_shows_names_not_paths(make_client, fitted_ckpt):
    body = make_client().get("/v1/models")
    current = body.json()["current"]
    assert current["label"] == "tiny-mlp-ret/0" and current["path"] is None
    assert str(fitted_ckpt) not in body.text and str(fitted_ckpt.parent) not in body.text


def test_feedback_is_rate_limited_per_client(make_client):
    c = make_client(feedback_per_minute=3)
    codes = [c.post("/v1/feedback", json=GOOD).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_feedback_total_is_bounded(make_client):
    c = make_client(feedback_max_rows=2)
    codes = [c.post("/v1/feedback", json=GOOD).status_code for _ in range(3)]
    assert codes == [200, 200, 507]


def test_feedback_fields_are_bounded(make_client):
    c = make_client(feedback_max_chars=100)
    r = c.post("/v1/feedback", json={**GOOD, "answer": "x" * 101})
    assert r.status_code == 422 and "answer too long: 101 characters" in r.text
    r = c.post("/v1/feedback", json={**GOOD, "comment": "x" * 101})
    assert r.status_code == 422 and "comment too long" in r.text


def test_rate_limiter_window_slides():
    limiter = RateLimiter(2, window_s=10)
    assert [limiter.allow("a", t) for t in (0, 1, 2)] == [True, True, False]
    assert limiter.allow("b", 2) and limiter.allow("a", 11.5)
