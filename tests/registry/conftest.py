"""Fixtures for checkpoint and registry tests: a tiny system model and an MLflow store."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from registry_helpers import make_model, make_tokenizer  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer():
    return make_tokenizer()


@pytest.fixture()
def model(tokenizer):
    return make_model(tokenizer)


@pytest.fixture(scope="session")
def _mlflow_home(tmp_path_factory, request):
    """One embedded MLflow store per session. Creating its SQLite schema runs MLflow's
    migrations (~10 s), so a migrated empty database is kept in pytest's cache, keyed
    by the MLflow version, and copied."""
    import mlflow

    from celltext.registry import tracking

    home = tmp_path_factory.mktemp("mlflow_home")
    db = home / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    if cache is None:
        cached = tmp_path_factory.mktemp("mlflow_cache") / "mlflow.db"
    else:
        cached = cache.mkdir(f"celltext-mlflow-{mlflow.__version__}") / "mlflow.db"
    if cached.is_file():
        shutil.copy(cached, db)
    else:
        uri = f"sqlite:///{db}"
        with tracking.quiet_mlflow():
            from mlflow import MlflowClient

            MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
        shutil.copy(db, cached)
    return home


@pytest.fixture()
def mlflow_store(_mlflow_home, monkeypatch):
    """The session's embedded MLflow store (tests use their own model names)."""
    monkeypatch.setenv("CELLTEXT_HOME", str(_mlflow_home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return _mlflow_home / "mlflow"
