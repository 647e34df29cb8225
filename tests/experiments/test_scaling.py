"""The scaling analysis: one cost measurement in-process, the preset of a quality run, and
the report from fixed rows."""

from __future__ import annotations

from types import SimpleNamespace

from celltext.experiments import scaling
from celltext.reports.markdown import read_section
from celltext.reports.scaling import write_report


def test_cost_worker_measures_a_small_lattice():
    spec = {"core": "lattice3d", "lattice": [3, 3, 3], "iters": 2, "dim": 32, "batch": 2,
            "threads": 1, "mode": "forward"}  # fmt: skip
    fwd = scaling.cost_worker(spec)
    assert fwd["params"] > 0 and fwd["p50_ms_batch1"] > 0 and fwd["ms_batch"] > 0
    train = scaling.cost_worker({**spec, "mode": "train"})
    assert "peak_mb_train_step" in train


def _row(core, size, ms, mem, cos):
    cells = size[0] * size[1] * size[2]
    return {"core": core, "lattice": list(size), "cells": cells, "batch": 8, "params": 10 * cells,
            "p50_ms_batch1": ms / 4, "ms_batch": ms, "peak_mb_forward": mem / 2,
            "peak_mb_train_step": mem, "train_time_s": None if cos is None else 1.0,
            "val_cosine": cos, "val_answer_top1": cos}  # fmt: skip


def test_quality_runs_train_the_core_stage_alone(monkeypatch, tmp_path):
    seen = {}

    def fake_train(preset, out, **kw):
        seen["preset"], seen["out"] = preset, out
        return SimpleNamespace(metrics={"val/cosine": 0.5, "val/retrieval_top1": 0.25})

    monkeypatch.setattr("celltext.training.trainer.train", fake_train)
    args = SimpleNamespace(preset="tiny", release="vx", seed=3, threads=1, out=str(tmp_path))
    budget = scaling.BUDGETS["tiny"]
    row = scaling.lattice_quality(args, budget, "lattice3d", (3, 3, 2), teacher=None)
    assert row["val_cosine"] == 0.5 and row["val_answer_top1"] == 0.25
    p = seen["preset"]
    assert p.enabled_stages() == ["core"] and p.core.name == "lattice3d"
    assert p.core.config == {"lattice": {"size": [3, 3, 2]}}  # tiny's MLP config dropped
    assert p.stages.core.train.max_steps == budget["core_steps"]
    assert p.seed == 3 and p.data.release == "vx" and p.registry.register is False
    assert seen["out"].name == "lattice-lattice3d-3x3x2"
    scaling.data_quality(args, budget, "mlp", 10, teacher=None)
    p = seen["preset"]
    assert p.data.max_train_pairs == 10 and p.stages.core.train.epochs == budget["epochs"]


def test_write_report_from_rows(tmp_path):
    report = {
        "command": "python benchmarks/scaling.py --budget tiny", "budget": "tiny",
        "release": "vtest", "seed": 0, "machine": {"cpu": "test cpu", "torch_threads": 1},
        "train_max_cells": {"hybrid_cct_mamba": 125},
        "lattice": [_row("lattice3d", (5, 5, 5), 10.0, 20.0, 0.5),
                    _row("lattice3d", (8, 8, 8), 40.0, 80.0, 0.6),
                    _row("hybrid_cct_mamba", (5, 5, 5), 30.0, 60.0, 0.7),
                    _row("hybrid_cct_mamba", (8, 8, 8), 90.0, 200.0, None)],
        "data": [{"core": "mlp", "train_pairs": n, "train_time_s": n / 10, "val_cosine": 0.5,
                  "val_answer_top1": 0.5} for n in (10, 20)],
    }  # fmt: skip
    doc = write_report(report, tmp_path / "PERF.md", tmp_path / "figures")
    body = read_section(doc, "scaling")
    assert "Command: `python benchmarks/scaling.py --budget tiny`" in body
    assert "| lattice3d | 8x8x8 | 512 |" in body
    assert "from 125 to 512 cells (4.1x) the batch-8 forward time grows 4.0x" in body
    assert "| – |" in body  # the untrained hybrid size
    for name in ("lattice_time", "lattice_memory", "lattice_quality", "data_quality"):
        assert (tmp_path / "figures" / f"scaling_{name}.png").stat().st_size > 1000
