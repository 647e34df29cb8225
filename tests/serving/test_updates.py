"""Automatic model updates: the service follows ``champion`` without dropping requests."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient
from serving_tiny import PAIRS, tiny_checkpoint

from celltext.inference import loading, registry_client
from celltext.serving import updater
from celltext.serving.app import create_app
from celltext.serving.settings import ServingSettings


@pytest.fixture(scope="module")
def second_ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "second", seed=1)


def _wait_for(predicate, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_champion_swap_keeps_requests_in_flight(
    predictor, fitted_ckpt, second_ckpt, tmp_path, monkeypatch
):
    target = {"path": fitted_ckpt}
    monkeypatch.setattr(updater, "resolve_ref", lambda ref: target["path"])
    monkeypatch.setattr(loading, "resolve_ref", lambda ref: target["path"])
    monkeypatch.setattr(registry_client, "resolve", lambda ref: None)  # no MLflow store needed
    monkeypatch.setattr(registry_client, "list_versions", lambda name: [])
    settings = ServingSettings(
        feedback_db=str(tmp_path / "fb.sqlite3"), warmup=False, registry_name="celltext",
        update_interval_s=0.05, micro_batch=1,
    )  # fmt: skip
    fast = predictor.answer
    monkeypatch.setattr(predictor, "answer", lambda qs: time.sleep(0.8) or fast(qs))
    with TestClient(create_app(settings, predictor=predictor)) as client:
        time.sleep(0.2)  # a few polls: champion unchanged, no swap
        assert client.get("/v1/models").json()["current"]["label"] == "tiny-mlp-ret/0"
        slow = {}
        thread = threading.Thread(
            target=lambda: slow.update(
                client.post("/v1/answer", json={"question": PAIRS[0][0]}).json()
            )
        )
        thread.start()
        time.sleep(0.1)  # the slow request is now in flight on the old model
        target["path"] = second_ckpt
        assert _wait_for(lambda: client.get("/v1/models").json()["current"]["version"] == "1")
        thread.join()
        assert slow["model"] == "tiny-mlp-ret/0" and slow["answer"] == PAIRS[0][1]
        after = client.post("/v1/answer", json={"question": PAIRS[0][0]}).json()
        assert after["model"].startswith("tiny-mlp-ret/1")
        metrics = client.get("/metrics").text
        assert "celltext_model_swaps_total 1.0" in metrics
        assert (
            'celltext_model_info{core="mlp_v1",decoder="ret_v1",name="tiny-mlp-ret",'
            'teacher="all-MiniLM-L6-v2",version="1"} 1.0'
        ) in metrics

        # a broken champion is not swapped in; the service keeps answering
        target["path"] = tmp_path
        time.sleep(0.3)
        assert client.get("/v1/models").json()["current"]["version"] == "1"
        assert client.post("/v1/answer", json={"question": "hi"}).status_code == 200
