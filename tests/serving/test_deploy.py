"""Deployment pieces: the Prometheus alert rules and the load-test script."""

from __future__ import annotations

import asyncio
import importlib.util
import re

import yaml
from fastapi.testclient import TestClient

from celltext.paths import REPO_ROOT
from celltext.serving.app import create_app
from celltext.serving.settings import ServingSettings

ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"


def test_alert_rules_use_metrics_the_service_exposes(predictor, tmp_path):
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    for kind in ("Latency", "ErrorRate", "FallbackRate", "QualityDrift"):
        assert any(kind in n for n in names), kind
    app = create_app(
        ServingSettings(feedback_db=str(tmp_path / "f.db"), warmup=False), predictor=predictor
    )
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    with TestClient(app) as client:
        families = list(client.app.state.service.metrics.registry.collect())
    exposed = {f.name + sfx for f in families for sfx in suffixes.get(f.type, [""])}
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "warn", "info")
        assert rule["annotations"]["summary"]
        for metric in re.findall(r"celltext_[a-z_]+", rule["expr"]):
            assert metric in exposed, f"{rule['alert']}: {metric} is not exported"


def _load_module():
    spec = importlib.util.spec_from_file_location(
        "load_bench", REPO_ROOT / "benchmarks" / "load.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_load_script_against_a_live_server(predictor, tmp_path, live_server):
    load = _load_module()
    app = create_app(
        ServingSettings(feedback_db=str(tmp_path / "f.db"), warmup=False), predictor=predictor
    )
    url = live_server(app)
    report = asyncio.run(
        load.run_load(url, load.DEFAULT_QUESTIONS[:3], concurrency=4, duration=1.0, timeout=30)
    )
    assert report["errors"] == 0 and report["ok"] > 0
    assert report["model"] == "tiny-mlp-ret/0"
    assert (
        report["throughput_rps"] > 0
        and report["latency_ms"]["p99"] >= report["latency_ms"]["p50"] > 0
    )
