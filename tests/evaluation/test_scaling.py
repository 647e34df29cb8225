"""benchmarks/scaling.py: one cost measurement in-process and the report from fixed rows."""

from __future__ import annotations

import importlib.util

import pytest

from celltext.evaluation.report import read_section
from celltext.paths import REPO_ROOT


@pytest.fixture(scope="module")
def scaling():
    spec = importlib.util.spec_from_file_location(
        "scaling", REPO_ROOT / "benchmarks" / "scaling.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cost_worker_measures_a_small_lattice(scaling):
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


def test_write_report_from_rows(scaling, tmp_path):
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
    doc = scaling.write_report(report, tmp_path / "PERF.md", tmp_path / "figures")
    body = read_section(doc, "scaling")
    assert "Command: `python benchmarks/scaling.py --budget tiny`" in body
    assert "| lattice3d | 8x8x8 | 512 |" in body
    assert "from 125 to 512 cells (4.1x) the batch-8 forward time grows 4.0x" in body
    assert "| – |" in body  # the untrained hybrid size
    for name in ("lattice_time", "lattice_memory", "lattice_quality", "data_quality"):
        assert (tmp_path / "figures" / f"scaling_{name}.png").stat().st_size > 1000
