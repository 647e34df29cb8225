"""The MLflow-backed registry: versions, aliases, rollback, comparison, references, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from registry_helpers import make_model
from typer.testing import CliRunner

from celltext.cli import app
from celltext.registry import load_checkpoint, resolve_model_ref, save_checkpoint
from celltext.registry.models import ModelRegistry, RegistryError
from celltext.registry.tracking import MlflowTracker, tracking_uri


def _register(tmp_path, tokenizer, name, cosine, seed, alias="auto"):
    ck = save_checkpoint(
        tmp_path / f"ck{seed}",
        make_model(tokenizer, seed),
        tokenizer,
        {},
        {
            "metrics": {"val/cosine": cosine},
            "dataset": {"version": "v1", "sha256": "ab" * 32},
            "training": {"preset": "tiny"},
        },
    )
    tracker = MlflowTracker("test-exp", run_name=f"run{seed}")
    tracker.log_metrics({"val/cosine": cosine}, step=1)
    tracker.log_artifacts(ck, "checkpoint")
    tracker.finish()
    return ModelRegistry().register(name, tracker.run_id, ck, alias=alias)


@pytest.fixture()
def two_versions(mlflow_store, tmp_path, tokenizer, request):
    name = request.node.name.replace("_", "-")[:40]
    v1 = _register(tmp_path, tokenizer, name, 0.5, 0)
    v2 = _register(tmp_path, tokenizer, name, 0.7, 1)
    return name, v1, v2


def test_store_location_and_override(mlflow_store, monkeypatch):
    assert tracking_uri() == f"sqlite:///{mlflow_store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking_uri() == "http://mlflow.example:5000"


def test_versions_aliases_promote_rollback(two_versions):
    m, v1, v2 = two_versions
    assert (v1["version"], v1["aliases"]) == (1, ["champion"])
    assert (v2["version"], v2["aliases"]) == (2, ["challenger"])
    assert v2["tags"]["dataset_version"] == "v1" and v2["metrics"]["val/cosine"] == 0.7
    reg = ModelRegistry()
    assert reg.best_version(m, "val/cosine")["version"] == 2
    assert reg.best_version(m, "val/cosine", mode="min")["version"] == 1
    promoted = reg.promote(m, 2)
    assert promoted["aliases"] == ["champion"] and reg.history(m) == [1, 2]
    back = reg.rollback(m)
    assert back["version"] == 1 and back["rolled_back_from"] == 2
    assert reg.alias_version(m, "champion") == 1 and reg.history(m) == [1]
    with pytest.raises(RegistryError, match="no previous champion"):
        reg.rollback(m)
    with pytest.raises(RegistryError):
        reg.promote(m, 9)
    table = reg.compare(m)
    assert [r["version"] for r in table["versions"]] == [2, 1]
    assert table["versions"][0]["val/cosine"] == 0.7


def test_resolve_model_ref(two_versions, tmp_path, tokenizer, monkeypatch):
    m = two_versions[0]
    champion = resolve_model_ref(f"{m}@champion")
    assert load_checkpoint(champion).metadata["metrics"]["val/cosine"] == 0.5
    second = resolve_model_ref(f"{m}/2")
    assert load_checkpoint(second).metadata["metrics"]["val/cosine"] == 0.7
    assert resolve_model_ref(str(second)) == second
    monkeypatch.setenv("CELLTEXT_DEFAULT_MODEL", str(second))
    assert resolve_model_ref(None) == second
    with pytest.raises(RegistryError):
        resolve_model_ref(f"{m}@nope")
    with pytest.raises(FileNotFoundError):
        resolve_model_ref(str(tmp_path / "missing"))
    monkeypatch.setenv("CELLTEXT_DEFAULT_MODEL", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="celltext train --preset default"):
        resolve_model_ref(None)


def test_cli_commands_print_one_json_document(two_versions, tmp_path):
    m = two_versions[0]
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(app, ["registry", *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    listed = run("list", m)
    assert [(r["name"], r["version"]) for r in listed] == [(m, 2), (m, 1)]
    assert any(r["name"] == m for r in run("list"))
    assert run("show", f"{m}@champion")["metadata"]["metrics"] == {"val/cosine": 0.5}
    assert run("promote", m, "--best", "val/cosine")["version"] == 2
    assert run("rollback", m)["version"] == 1
    assert run("compare", m, "1", "2")["metrics"] == ["val/cosine"]
    assert run("best", m, "--metric", "val/cosine")["version"] == 2
    soup = run("soup", "--out", str(tmp_path / "soup"), f"{m}/1", f"{m}/2")
    assert load_checkpoint(soup["checkpoint"]).metadata["training"]["soup"]
    bad = runner.invoke(app, ["registry", "rollback", "nope", "--json"])
    assert bad.exit_code == 1 and "no such registered model" in bad.output


def test_training_run_is_tracked_and_registered(mlflow_store, tmp_path, monkeypatch):
    import training_fakes

    from celltext.registry.tracking import mlflow_client
    from celltext.training.presets import load_preset
    from celltext.training.trainer import train

    training_fakes.install(monkeypatch)
    result = train(
        load_preset("tiny", ["stages.finetune.enabled=false"]), tmp_path / "run", progress=False
    )
    reg = result.registered
    assert reg["name"] == "celltext-tiny" and reg["version"] == 1
    assert reg["aliases"] == ["champion"]
    run = mlflow_client().get_run(reg["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["stages.core.train.lr"] == "0.003"
    assert run.data.tags["dataset_version"] == "v1"
    assert "core/val/cosine" in run.data.metrics and "system/peak_rss_mb" in run.data.metrics
    history = mlflow_client().get_metric_history(reg["run_id"], "decoder/train/loss")
    assert len(history) >= 2
    ck = load_checkpoint(resolve_model_ref("celltext-tiny@champion"))
    assert ck.metadata["weights_sha256"] == result.weights_sha256
    assert torch.equal(
        next(iter(ck.model.state_dict().values())),
        next(iter(load_checkpoint(result.checkpoint).model.state_dict().values())),
    )


def test_register_an_existing_checkpoint_and_refuse_a_tampered_one(
    mlflow_store, tmp_path, tokenizer
):
    ck = save_checkpoint(
        tmp_path / "shipped",
        make_model(tokenizer, 0),
        tokenizer,
        {},
        {"metrics": {"val/cosine": 0.6}, "dataset": {"version": "v1", "sha256": "cd" * 32}},
    )
    runner = CliRunner()
    name = "imported-model"
    result = runner.invoke(app, ["registry", "register", str(ck), "--name", name, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["version"], info["aliases"]) == (1, ["champion"])
    assert info["tags"]["dataset_sha256"] == "cd" * 32
    assert load_checkpoint(resolve_model_ref(f"{name}@champion")).metadata["metrics"] == {
        "val/cosine": 0.6
    }
    weights = ck / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])  # truncated
    bad = runner.invoke(app, ["registry", "register", str(ck), "--name", name, "--json"])
    assert bad.exit_code == 1 and "model.safetensors" in bad.output
    assert [r["version"] for r in ModelRegistry().list_versions(name)] == [1]
