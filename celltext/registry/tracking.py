"""Experiment tracking behind one small interface; MLflow is the implementation.

The store is ``$MLFLOW_TRACKING_URI`` when set (any MLflow server or database), else an
embedded SQLite database ``<celltext home>/mlflow/mlflow.db`` with artifacts under
``<celltext home>/mlflow/artifacts``. The same URI serves as the model-registry URI.

MLflow is imported lazily (it takes seconds) and kept quiet: its loggers are raised to
WARNING and anything it prints on stdout is redirected to stderr, so a command's
``--json`` output stays a single document. Only the main process tracks.

A SQLite store is checked before MLflow opens it: a folder that does not exist (a typo in
``$MLFLOW_TRACKING_URI``) or a file that is not an SQLite database is a
:class:`~celltext.registry.errors.RegistryUnavailable` naming the file, instead of a new
empty database or a SQLAlchemy traceback.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from celltext.paths import home_dir
from celltext.registry.errors import sqlite_path, unavailable

log = logging.getLogger(__name__)

_QUIET_LOGGERS = ("mlflow", "alembic", "sqlalchemy", "urllib3", "git")


def mlflow_dir() -> Path:
    """Directory of the embedded store (database and artifacts)."""
    path = home_dir() / "mlflow"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` or the embedded SQLite store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{mlflow_dir() / 'mlflow.db'}"


def default_artifact_location() -> str | None:
    """Artifact root for new experiments in the embedded store (None: server default)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    path = mlflow_dir() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Keep MLflow's banners and progress off stdout (and its INFO logs off stderr; urllib3's
    "Retrying ..." warnings too: a request that finally fails is reported once, by us)."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    with contextlib.redirect_stdout(sys.stderr):
        yield


SQLITE_HEADER = b"SQLite format 3\x00"


def check_store(uri: str) -> None:
    """Refuse a SQLite store MLflow would silently create in a folder that does not exist,
    and a file that is not an SQLite database (raises ``RegistryUnavailable``)."""
    path = sqlite_path(uri)
    if path is None:
        return
    if not path.parent.is_dir():
        raise unavailable(uri, f"folder {path.parent} does not exist (check MLFLOW_TRACKING_URI)")
    if path.is_dir():
        raise unavailable(uri, "a folder, not an SQLite database file")
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise unavailable(uri, "not an SQLite database (corrupt, or another file)")


# How long one registry request may take against an MLflow server: MLflow's defaults (120 s
# per try, 7 retries with exponential backoff) make an unreachable server cost ~4 minutes.
# Set the variables yourself to override.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def limit_http_waits() -> None:
    """Apply :data:`HTTP_LIMITS` where the environment does not set them (MLflow reads them
    at every request). Registry reads use it; training runs keep MLflow's patient retries."""
    for name, value in HTTP_LIMITS.items():
        os.environ.setdefault(name, value)


_CLIENTS: dict[str, Any] = {}


def mlflow_client():
    """An ``MlflowClient`` for :func:`tracking_uri` (cached per URI, quietly created; a store
    that cannot be opened raises ``RegistryUnavailable``)."""
    uri = tracking_uri()
    if uri not in _CLIENTS:
        check_store(uri)
        with quiet_mlflow():
            from mlflow import MlflowClient

            try:  # a SQL store opens (and checks its schema) here
                _CLIENTS[uri] = MlflowClient(tracking_uri=uri, registry_uri=uri)
            except Exception as exc:  # noqa: BLE001 -- SQLAlchemy, MLflow, OSError, ...
                raise unavailable(uri, exc) from exc
    return _CLIENTS[uri]


class Tracker(Protocol):
    """What the trainer needs from experiment tracking."""

    run_id: str | None

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def set_tags(self, tags: dict[str, Any]) -> None: ...

    def log_artifacts(self, local_dir: Path, artifact_path: str) -> None: ...

    def finish(self, status: str = "FINISHED") -> None: ...


class NullTracker:
    """Tracks nothing (``--no-register``, non-main processes)."""

    run_id: str | None = None

    def log_params(self, params: dict[str, Any]) -> None:
        """Ignore."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Ignore."""

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Ignore."""

    def log_artifacts(self, local_dir: Path, artifact_path: str) -> None:
        """Ignore."""

    def finish(self, status: str = "FINISHED") -> None:
        """Ignore."""


class MlflowTracker:
    """One MLflow run (created, or continued when ``run_id`` is given: resumed training)."""

    def __init__(self, experiment: str, run_name: str | None = None, run_id: str | None = None):
        self.client = mlflow_client()
        with quiet_mlflow():
            if run_id is None:
                exp = self.client.get_experiment_by_name(experiment)
                exp_id = (
                    exp.experiment_id
                    if exp is not None
                    else self.client.create_experiment(
                        experiment, artifact_location=default_artifact_location()
                    )
                )
                run = self.client.create_run(exp_id, run_name=run_name)
                run_id = run.info.run_id
            else:
                self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        """Log (flattened) parameters; values are stringified and cut to MLflow's limit."""
        from mlflow.entities import Param

        existing = self.client.get_run(self.run_id).data.params
        items = [Param(k, str(v)[:6000]) for k, v in sorted(params.items()) if k not in existing]
        with quiet_mlflow():
            for start in range(0, len(items), 100):
                self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log finite metrics at ``step``."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(k, float(v), now, int(step))
            for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and math.isfinite(v)
        ]
        if items:
            with quiet_mlflow():
                self.client.log_batch(self.run_id, metrics=items)

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set run tags."""
        with quiet_mlflow():
            for k, v in tags.items():
                self.client.set_tag(self.run_id, k, str(v))

    def log_artifacts(self, local_dir: Path, artifact_path: str) -> None:
        """Copy a directory into the run's artifacts under ``artifact_path``."""
        with quiet_mlflow():
            self.client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        """Mark the run finished (or FAILED / KILLED)."""
        with quiet_mlflow():
            self.client.set_terminated(self.run_id, status=status)


def system_metrics() -> dict[str, float]:
    """Cheap resource usage of this process: peak RSS, CPU time, CPU percent (psutil)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "system/peak_rss_mb": usage.ru_maxrss / 1024.0,
        "system/cpu_user_s": usage.ru_utime,
        "system/cpu_system_s": usage.ru_stime,
    }
    try:
        import psutil

        out["system/memory_percent"] = psutil.virtual_memory().percent
        out["system/cpu_count"] = float(psutil.cpu_count() or 0)
    except Exception:  # psutil is optional
        pass
    return out


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (for MLflow params)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
