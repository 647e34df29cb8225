"""Registered versions as MLflow models: a ``python_function`` flavour over celltext's predictor.

Each registered version points at ``runs:/<run_id>/model``, an MLflow model directory
(``MLmodel``, a signature) whose data is the checkpoint and whose loader module is
:mod:`celltext.inference.mlflow_model`. So
the usual MLflow commands work on the registry::

    mlflow models predict -m models:/celltext@champion --env-manager local \\
        -t json -i questions.json            # {"question": ["What is a compiler?"]}
    mlflow models serve -m models:/celltext@champion --env-manager local

``predict`` takes a DataFrame with a ``question`` column (or a list of strings) and answers
through the serving predictor (see the loader module), so answers are exactly those of
``celltext ask`` and the HTTP service. ``model_config={"fallback": False}`` turns the
phrase-bank fallback off. The model directory names its loader instead of pickling a class,
so the model registry does not import the serving code.

The training release is logged as an MLflow dataset input of the run (name, sha256 digest,
source ``data/releases/<version>``), so the MLflow UI's Dataset column shows it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from celltext.registry.tracking import quiet_mlflow

MODEL_ARTIFACT = "model"
LOADER_MODULE = "celltext.inference.mlflow_model"
INPUT_EXAMPLE = {"question": ["What is a neural network?"]}


def save_pyfunc_model(checkpoint_dir: str | Path, path: str | Path) -> Path:
    """Write an MLflow model directory at ``path`` that serves ``checkpoint_dir``."""
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature

    import celltext

    path = Path(path)
    example_out = {"answer": ["text"], "confidence": [0.5], "fallback": [False]}
    example_out |= {"provenance": ["generated"], "model": ["name/version"]}
    signature = infer_signature(pd.DataFrame(INPUT_EXAMPLE), pd.DataFrame(example_out))
    with quiet_mlflow():
        mlflow.pyfunc.save_model(
            path=str(path),
            loader_module=LOADER_MODULE,  # named, not imported: the loader needs the predictor
            data_path=str(checkpoint_dir),
            signature=signature,  # no input_example: MLflow would load the model to check it
            pip_requirements=[f"celltext=={celltext.__version__}"],
            model_config={"fallback": True},
        )
    return path


def log_pyfunc_model(client, run_id: str, checkpoint_dir: str | Path) -> str:
    """Log the MLflow model of ``checkpoint_dir`` into run ``run_id``; returns its URI."""
    tmp = Path(tempfile.mkdtemp(prefix="celltext-pyfunc-"))
    try:
        save_pyfunc_model(checkpoint_dir, tmp / MODEL_ARTIFACT)
        with quiet_mlflow():
            client.log_artifacts(run_id, str(tmp / MODEL_ARTIFACT), MODEL_ARTIFACT)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return f"runs:/{run_id}/{MODEL_ARTIFACT}"


def log_release_input(client, run_id: str, dataset: dict[str, Any]) -> bool:
    """Log the training release (checkpoint metadata's ``dataset``) as the run's dataset
    input, once; returns whether it was logged."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    version, sha256 = dataset.get("version"), dataset.get("sha256")
    if not version or not sha256:
        return False
    with quiet_mlflow():
        inputs = client.get_run(run_id).inputs
        if any(d.dataset.digest == sha256[:36] for d in (inputs.dataset_inputs or [])):
            return False
        entity = Dataset(
            name=f"celltext-release-{version}",
            digest=sha256[:36],  # MLflow's digest column holds 36 characters
            source_type="local",
            source=f'{{"uri": "data/releases/{version}"}}',
            schema=None,
            profile=f'{{"sha256": "{sha256}"}}',
        )
        tags = [InputTag("mlflow.data.context", "training")]
        client.log_inputs(run_id, datasets=[DatasetInput(entity, tags)])
    return True
