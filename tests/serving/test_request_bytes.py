"""Bodies that are not UTF-8 (hardening issue, item 1): a 422 through the real app, never a
500 that counts toward ``CelltextHighErrorRate``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from celltext.serving.app import create_app
from celltext.serving.settings import ServingSettings

BAD_BYTES = b"\xff\xfe{}"
NOT_JSON_TYPES = ["text/plain", "application/x-www-form-urlencoded", None]


@pytest.fixture
def client(predictor, tmp_path):
    settings = ServingSettings(feedback_db=str(tmp_path / "fb.sqlite3"), warmup=False)
    with TestClient(create_app(settings, predictor=predictor), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("path", ["/v1/answer", "/v1/feedback", "/v1/decode", "/v1/embed"])
@pytest.mark.parametrize("content_type", NOT_JSON_TYPES)
def test_non_utf8_body_is_422(client, path, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    r = client.post(path, content=BAD_BYTES, headers=headers)
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body"] and "JSON object" in error["msg"]
    assert error["input"] == "\\xff\\xfe{}"  # the bad bytes escaped, not decoded
    assert 'status="500"' not in client.get("/metrics").text


def test_non_utf8_json_body_is_422(client):
    r = client.post("/v1/answer", content=BAD_BYTES, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"


def test_non_utf8_body_echo_is_bounded(client):
    r = client.post("/v1/answer", content=b"\xff" * 5000, headers={"content-type": "text/plain"})
    assert r.status_code == 422
    assert len(r.content) < 2000 and "(5000 bytes)" in r.text  # never the whole body
