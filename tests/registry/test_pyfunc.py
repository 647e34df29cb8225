"""Registered versions are MLflow pyfunc models that answer through celltext's predictor,
and the training release is the run's MLflow dataset input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serving_tiny import PAIRS, tiny_checkpoint, tiny_release  # noqa: E402

from celltext.inference.factory import load_predictor

QUESTIONS = [PAIRS[0][0], PAIRS[3][0]]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("pyfunc") / "tiny")


@pytest.fixture()
def registered(mlflow_store, tiny_ckpt, request):
    from celltext.registry.models import ModelRegistry

    name = request.node.name.replace("_", "-")[:40]
    return name, ModelRegistry().register_checkpoint(tiny_ckpt, name=name)


def _expected(tiny_ckpt) -> list[str]:
    from celltext.inference.factory import load_predictor

    return [a.answer for a in load_predictor(str(tiny_ckpt), fallback=False).answer(QUESTIONS)]


def test_version_is_an_mlflow_model_that_answers_like_the_predictor(registered, tiny_ckpt):
    import mlflow.pyfunc
    import pandas as pd

    from celltext.inference.mlflow_model import OUTPUT_COLUMNS
    from celltext.registry.tracking import tracking_uri

    name, info = registered
    assert info["source"] == f"runs:/{info['run_id']}/model"
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(tracking_uri())
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@champion"))
    assert (local / "MLmodel").is_file() and "python_function" in (local / "MLmodel").read_text()
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion", model_config={"fallback": False})
    out = model.predict(pd.DataFrame({"question": QUESTIONS}))
    assert list(out.columns) == list(OUTPUT_COLUMNS) and len(out) == 2
    assert out["answer"].tolist() == _expected(tiny_ckpt)


def test_release_is_logged_as_a_dataset_input_once(mlflow_store):
    from celltext.registry.pyfunc import log_release_input
    from celltext.registry.tracking import MlflowTracker, mlflow_client

    tracker = MlflowTracker("test-datasets", run_name="r")
    dataset = {"version": "v1", "sha256": "2aceb2438ee37143" + "0" * 48}
    assert log_release_input(mlflow_client(), tracker.run_id, dataset)
    assert not log_release_input(mlflow_client(), tracker.run_id, dataset)  # already there
    assert not log_release_input(mlflow_client(), tracker.run_id, {})
    inputs = mlflow_client().get_run(tracker.run_id).inputs.dataset_inputs
    assert [(d.dataset.name, d.dataset.digest) for d in inputs] == [
        ("celltext-release-v1", dataset["sha256"][:36])
    ]
    assert json.loads(inputs[0].dataset.profile)["sha256"] == dataset["sha256"]
    assert inputs[0].tags[0].value == "training"


@pytest.mark.slow
def test_mlflow_models_predict_cli(registered, tiny_ckpt, tmp_path, monkeypatch):
    from celltext.registry.tracking import tracking_uri

    name, _ = registered
    request = tmp_path / "in.json"
    split = {"columns": ["question"], "data": [[q] for q in QUESTIONS]}
    request.write_text(json.dumps({"dataframe_split": split}))
    out = tmp_path / "out.json"
    # the served model's phrase bank comes from a tiny release: the real one would need
    # minutes of embedding in this test's fresh cache
    releases = tmp_path / "releases"
    tiny_release(releases)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(), "HF_HUB_OFFLINE": "1",
           "CELLTEXT_RELEASES": str(releases)}  # fmt: skip
    cmd = [str(Path(sys.executable).parent / "mlflow"), "models", "predict",
           "-m", f"models:/{name}@champion", "-i", str(request), "-t", "json",
           "-o", str(out), "--env-manager", "local"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    predictions = json.loads(out.read_text())["predictions"]

    monkeypatch.setenv("CELLTEXT_RELEASES", str(releases))  # the same bank in this process
    expected = [a.answer for a in load_predictor(str(tiny_ckpt)).answer(QUESTIONS)]
    assert [p["answer"] for p in predictions] == expected
