"""``celltext models list/show`` through the real typer app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import celltext.models.decoders  # noqa: F401  (in case the package __init__ lags)
from celltext.cli import app
from celltext.models.zoo import count_parameters, create_model, list_models

runner = CliRunner()


def test_models_list_json_matches_registry():
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {(r["name"], r["kind"]) for r in rows} == {(e.family, e.kind) for e in list_models()}
    for row in rows:
        assert set(row) >= {"name", "version", "kind", "params"}
        assert row["kind"] in ("core", "decoder") and isinstance(row["version"], int)
        assert row["params"] == count_parameters(create_model(row["id"], kind=row["kind"]))
    by_name = {(r["name"], r["kind"]): r for r in rows}
    assert by_name[("ret", "decoder")]["params"] <= 1_000_000
    assert all(r["params"] > 0 for r in rows)  # every registered model has weights to train


def test_models_list_dim_and_human_table():
    small = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    big = json.loads(runner.invoke(app, ["models", "list", "--json", "--dim", "768"]).stdout)
    ret = [r["params"] for rows in (small, big) for r in rows if r["id"] == "ret_v1"]
    assert ret[1] > ret[0]
    human = runner.invoke(app, ["models", "list"])
    assert human.exit_code == 0 and "ret_v1" in human.output


def test_models_show():
    result = runner.invoke(app, ["models", "show", "ret", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["id"] == "ret_v1" and info["config"]["vocab_size"] == 4096
    assert sum(info["components"].values()) == info["params"]
    bad = runner.invoke(app, ["models", "show", "nonexistent"])
    assert bad.exit_code != 0 and "unknown model" in bad.output
