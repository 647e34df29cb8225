"""Automatic model updates: the service follows ``champion`` without dropping requests,
compares model identities (never folders), and never changes backend on its own."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from serving_tiny import PAIRS, tiny_checkpoint

from celltext.inference import loading, registry_client
from celltext.inference.records import Answer, ModelInfo
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


def _settings(tmp_path, **kw) -> ServingSettings:
    base = {"feedback_db": str(tmp_path / "fb.sqlite3"), "warmup": False, "micro_batch": 1,
            "registry_name": "celltext-tiny", "update_interval_s": 0.05}  # fmt: skip
    return ServingSettings(**{**base, **kw})


def test_champion_swap_keeps_requests_in_flight(
    predictor, fitted_ckpt, second_ckpt, tmp_path, monkeypatch
):
    target = {"path": fitted_ckpt, "id": ("tiny-mlp-ret", 0)}
    monkeypatch.setattr(updater, "resolve_ref", lambda ref: target["path"])
    monkeypatch.setattr(loading, "resolve_ref", lambda ref: target["path"])
    monkeypatch.setattr(registry_client, "resolve", lambda ref: target["id"])
    monkeypatch.setattr(registry_client, "list_versions", lambda name: [])
    fast = predictor.answer
    monkeypatch.setattr(predictor, "answer", lambda qs: time.sleep(0.8) or fast(qs))
    with TestClient(create_app(_settings(tmp_path), predictor=predictor)) as client:
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
        target.update(path=second_ckpt, id=("tiny-mlp-ret", 1))
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
        assert 'celltext_model_backend{backend="torch"} 1.0' in metrics

        # a broken champion is not swapped in; the service keeps answering
        target.update(path=tmp_path, id=("tiny-mlp-ret", 2))
        time.sleep(0.3)
        assert client.get("/v1/models").json()["current"]["version"] == "1"
        assert client.post("/v1/answer", json={"question": "hi"}).status_code == 200


# -- identities and backends, with stand-in predictors ----------------------------------------
class StubPredictor:
    """What the service and the watcher use of a predictor, on a named backend."""

    bank = None
    dim = 4

    def __init__(self, name: str, version: str, backend: str, path: str):
        self.info = ModelInfo(name, version, path=path, teacher_id="t")
        self.backend = SimpleNamespace(name=backend)
        self.teacher = SimpleNamespace(id="t")
        self.config = SimpleNamespace(fallback=True)

    def answer(self, questions):
        return [Answer(q, "a", 0.9, False, None, 1.0, self.info.label) for q in questions]

    def timeout_answers(self, questions, timeout_s):
        return None


class FakeRegistry:
    """``name@champion`` -> a version; checkpoints under ``root/<version>``; exports built
    for the versions in ``exported``; ``load_predictor`` calls recorded."""

    def __init__(self, root, monkeypatch, champion: int, exported: set[int]):
        self.root, self.champion, self.exported, self.loads = root, champion, exported, []
        monkeypatch.setattr(registry_client, "resolve", self.resolve)
        monkeypatch.setattr(registry_client, "list_versions", lambda name: [])
        monkeypatch.setattr(updater, "resolve_ref", self.checkpoint)
        monkeypatch.setattr(updater, "export_dir_for", lambda ckpt: root / f"export-{ckpt.name}")
        monkeypatch.setattr(updater, "is_onnx_export", self.is_export)
        monkeypatch.setattr(updater, "read_manifest", lambda folder: {"teacher": {"id": "t"}})
        monkeypatch.setattr(updater, "load_predictor", self.load)

    def resolve(self, ref: str):
        name, _, rest = ref.partition("@") if "@" in ref else ref.rpartition("/")
        return name, self.champion if "@" in ref else int(rest)

    def checkpoint(self, ref: str):
        return self.root / f"ckpt-{self.resolve(ref)[1]}"

    def is_export(self, folder) -> bool:
        return any(folder.name == f"export-ckpt-{v}" for v in self.exported)

    def load(self, ref, backend=None, **kw):
        self.loads.append((str(ref), backend))
        if backend == "onnx":
            version = str(ref).rsplit("-", 1)[1]
            return StubPredictor("celltext-tiny", f"{version}+onnx", "onnxruntime", str(ref))
        version = str(ref).rsplit("/", 1)[1]
        return StubPredictor("celltext-tiny", version, "torch", str(self.root / "ckpt"))


def test_an_onnx_service_is_not_reloaded_while_champion_stays(tmp_path, monkeypatch):
    fake = FakeRegistry(tmp_path, monkeypatch, champion=1, exported={1})
    served = StubPredictor("celltext-tiny", "1+onnx", "onnxruntime", str(tmp_path / "export-1"))
    with TestClient(create_app(_settings(tmp_path), predictor=served)) as client:
        time.sleep(0.6)  # ~10 polls
        metrics = client.get("/metrics").text
        assert fake.loads == [] and "celltext_model_swaps_total 0.0" in metrics
        assert 'celltext_model_backend{backend="onnxruntime"} 1.0' in metrics
        assert client.get("/health").json()["backend"] == "onnxruntime"
        assert client.get("/v1/models").json()["current"]["backend"] == "onnxruntime"


def test_an_onnx_service_refuses_a_version_without_export(tmp_path, monkeypatch, caplog):
    fake = FakeRegistry(tmp_path, monkeypatch, champion=1, exported={1})
    served = StubPredictor("celltext-tiny", "1+onnx", "onnxruntime", str(tmp_path / "export-1"))
    caplog.set_level(logging.WARNING, logger="celltext.serving.updater")
    with TestClient(create_app(_settings(tmp_path), predictor=served)) as client:
        fake.champion = 2  # no export of version 2
        time.sleep(0.6)
        assert client.get("/v1/models").json()["current"]["version"] == "1+onnx"
        assert fake.loads == []  # never a silent move to PyTorch
        refusals = [r.getMessage() for r in caplog.records if "no ONNX export" in r.getMessage()]
        assert len(refusals) == 1, refusals  # said once, not at every poll
        assert "celltext export onnx --model celltext-tiny/2" in refusals[0]
        metrics = client.get("/metrics").text
        assert 'celltext_model_swaps_refused_total{reason="no_onnx_export"} 1.0' in metrics

        fake.exported.add(2)  # the operator builds the export: the next poll swaps
        assert _wait_for(
            lambda: client.get("/v1/models").json()["current"]["version"] == "2+onnx", 5
        )
        assert fake.loads == [(str(tmp_path / "export-ckpt-2"), "onnx")]
        assert client.get("/health").json()["backend"] == "onnxruntime"


def test_a_torch_service_stays_on_torch(tmp_path, monkeypatch):
    fake = FakeRegistry(tmp_path, monkeypatch, champion=1, exported={1, 2})
    served = StubPredictor("celltext-tiny", "1", "torch", str(tmp_path / "ckpt-1"))
    with TestClient(create_app(_settings(tmp_path), predictor=served)) as client:
        time.sleep(0.3)
        assert fake.loads == []
        fake.champion = 2  # an export of version 2 exists, but this service runs PyTorch
        assert _wait_for(lambda: client.get("/v1/models").json()["current"]["version"] == "2", 5)
        assert fake.loads == [("celltext-tiny/2", "torch")]
        assert client.get("/health").json()["backend"] == "torch"
