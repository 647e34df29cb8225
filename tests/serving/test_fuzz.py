"""Fuzzing the API from its OpenAPI schema with hypothesis: never a 500."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_strategies import from_schema

from celltext.serving.app import create_app
from celltext.serving.settings import ServingSettings

FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def client(fitted_ckpt, teacher, bank, tmp_path_factory):
    from celltext.inference.factory import load_predictor

    predictor = load_predictor(str(fitted_ckpt), teacher=teacher, bank=bank).with_config(
        decoding={"generation": {"max_new_tokens": 8}}  # keep each request fast
    )
    home = tmp_path_factory.mktemp("fuzz")
    s = ServingSettings(feedback_db=str(home / "fb.sqlite3"), warmup=False, max_batch=4,
                        max_question_chars=300, max_body_bytes=50_000)  # fmt: skip
    with TestClient(create_app(s, predictor=predictor), raise_server_exceptions=False) as c:
        yield c


def _operations(client) -> list[tuple[str, dict]]:
    """(path, request-body schema) of every POST operation with a JSON body."""
    schema = client.app.openapi()
    ops = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            if method == "post" and "requestBody" in op:
                ops.append((path, op["requestBody"]["content"]["application/json"]["schema"]))
    return ops


def test_schema_has_every_endpoint(client):
    paths = {p for p, _ in _operations(client)}
    assert {"/v1/answer", "/v1/answer/batch", "/v1/decode", "/v1/embed", "/v1/feedback",
            "/v1/models/{name}/promote"} <= paths  # fmt: skip


@pytest.mark.parametrize(
    "path", ["/v1/answer", "/v1/answer/batch", "/v1/embed", "/v1/feedback", "/v1/decode"]
)
def test_schema_valid_bodies_never_500(client, path):
    schema = dict(_operations(client))[path]
    strategy = from_schema(schema, client.app.openapi())

    @FUZZ
    @given(body=strategy)
    def run(body):
        r = client.post(path, json=body)
        assert r.status_code < 500, (body, r.text)
        assert r.status_code in (200, 413, 422), (body, r.text)

    run()


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/v1/answer",
            "/v1/answer/batch",
            "/v1/decode",
            "/v1/embed",
            "/v1/feedback",
            "/v1/activity",
            "/v1/models/x/promote",
        ]
    ),  # fmt: skip
    body=JSON,
)
def test_arbitrary_json_never_500(client, path, body):
    r = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code < 500, (path, body, r.text)


@FUZZ
@given(raw=st.binary(max_size=200), name=st.text(min_size=1, max_size=20))
def test_garbage_bytes_and_names_never_500(client, raw, name):
    r = client.post("/v1/answer", content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422), r.text
    r = client.post(f"/v1/models/{quote(name, safe='')}/rollback", json={})
    assert r.status_code < 500
