"""A registry that cannot answer is "unavailable", never "not found" (hardening issue, items
4 and 14): an unreachable server fails within seconds, a corrupt SQLite database or one in a
missing folder is a one-line error naming the file, and nothing is created on the way."""

from __future__ import annotations

import json
import threading

import pytest
from typer.testing import CliRunner

from celltext.cli import app
from celltext.registry import models
from celltext.registry.models import ModelRegistry, RegistryError

UNREACHABLE = "http://127.0.0.1:1"  # nothing listens on port 1: connection refused
HTTP_LIMITS = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)


def _within(seconds: float, fn, *args) -> dict:
    """``fn(*args)`` in a daemon thread: ``{"value": ...}`` or ``{"error": ...}``; fails the
    test when it has not returned within ``seconds`` (MLflow's own retries take ~4 min)."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 -- handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"no answer within {seconds} s"
    return box


@pytest.fixture
def unreachable(monkeypatch):
    """``MLFLOW_TRACKING_URI`` at a closed port, MLflow's HTTP limits at their defaults."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE)
    for var in HTTP_LIMITS:
        monkeypatch.delenv(var, raising=False)


def _cli(*args: str) -> tuple[int, dict]:
    """Exit code and the one JSON document on stdout of ``celltext ARGS``."""
    result = _within(60, CliRunner().invoke, app, list(args))["value"]
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("alias_version", ("m", "champion")),
        ("history", ("m",)),
        ("get_version", ("m", 1)),
        ("resolve", ("m@champion",)),
        ("promote", ("m", 1)),
    ],
)
def test_an_unreachable_registry_is_unavailable_within_seconds(unreachable, method, args):
    box = _within(30, getattr(ModelRegistry(), method), *args)
    error = box.get("error")
    assert isinstance(error, models.RegistryUnavailable), box
    assert isinstance(error, RegistryError)  # the CLI's one-line errors cover it
    assert "registry unavailable" in str(error) and "127.0.0.1:1" in str(error)
    assert "\n" not in str(error)


def test_unknown_names_are_still_not_found(mlflow_store):
    registry = ModelRegistry()
    assert registry.alias_version("never-registered", "champion") is None
    with pytest.raises(models.RegistryNotFound, match="no model version never-registered/1"):
        registry.get_version("never-registered", 1)
    with pytest.raises(models.RegistryNotFound, match="no alias 'champion'"):
        registry.resolve("never-registered@champion")


def test_cli_reports_an_unreachable_registry(unreachable):
    code, doc = _cli("registry", "list", "--json")
    assert code == 1 and "registry unavailable" in doc["error"]
    code, doc = _cli("ask", "What is a GPU?", "--model", "m@champion", "--json")
    assert code == 1 and "registry unavailable" in doc["error"]
    assert "no alias" not in doc["error"]


@pytest.mark.parametrize(
    "command",
    [("registry", "list", "--json"), ("ask", "What is a GPU?", "--model", "m@champion", "--json")],
)
def test_a_corrupt_database_is_named(tmp_path, monkeypatch, command):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not an SQLite database\n" * 200)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    code, doc = _cli(*command)
    assert code == 1
    assert str(db) in doc["error"] and "not an SQLite database" in doc["error"]
    assert "sqlalchemy" not in doc["error"].lower()


def test_a_database_in_a_missing_folder_is_refused_not_created(tmp_path, monkeypatch):
    db = tmp_path / "typo" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    for command in (("registry", "list", "--json"), ("ask", "hi", "-m", "m@champion", "--json")):
        code, doc = _cli(*command)
        assert code == 1 and f"folder {db.parent} does not exist" in doc["error"], doc
    assert not db.parent.exists()


def test_a_damaged_database_is_unavailable(mlflow_store, tmp_path, monkeypatch):
    """A file with SQLite's header but damaged pages fails at query time: still named."""
    db = tmp_path / "damaged.db"
    data = bytearray((mlflow_store / "mlflow.db").read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)  # keep the header, wreck every page
    db.write_bytes(bytes(data))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    box = _within(30, lambda: ModelRegistry().alias_version("m", "champion"))
    error = box.get("error")
    assert isinstance(error, models.RegistryUnavailable), box
    assert str(db) in str(error)
