"""benchmarks/training_curves.py and benchmarks/lattice_activity.py on synthetic inputs."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest

from celltext.paths import REPO_ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def curves():
    return _load("training_curves")


def _h(step: int, value: float, timestamp: int) -> SimpleNamespace:
    return SimpleNamespace(step=step, value=value, timestamp=timestamp)


def test_a_curve_leaves_out_the_final_summary_and_repeats(curves):
    # logged at steps 5, 10, 15, 20, then the registration's summary again at step 10
    history = [_h(10, 5.2, 2), _h(5, 5.6, 1), _h(15, 5.0, 3), _h(20, 4.9, 4), _h(10, 4.9, 9),
               _h(20, 4.9, 5)]  # fmt: skip
    assert curves._curve(history) == [(5, 5.6), (10, 5.2), (15, 5.0), (20, 4.9)]


def test_curves_draw_one_panel_per_stage(curves, tmp_path):
    series = {"train/loss": [(5, 2.0), (10, 1.5)], "val/loss": [(10, 1.7)],
              "val/cosine": [(10, 0.7)]}  # fmt: skip
    out = curves.draw({"core": series, "decoder": series}, tmp_path / "c.png", "t")
    assert out.stat().st_size > 10_000
    with pytest.raises(SystemExit, match="no per-stage metrics"):
        curves.draw({}, tmp_path / "none.png", "t")


def test_run_id_needs_a_source(curves, tmp_path):
    assert curves.run_id_of(None, None, "abc") == "abc"
    (tmp_path / "run.json").write_text('{"mlflow_run_id": null}')
    with pytest.raises(SystemExit, match="no MLflow run"):
        curves.run_id_of(None, tmp_path, None)
    with pytest.raises(SystemExit, match="NAME/VERSION"):
        curves.run_id_of("celltext", None, None)


def test_lattice_activity_draws_z_slices(tmp_path):
    activity = _load("lattice_activity")
    act = np.random.default_rng(0).random((2, 3, 4, 4, 4)).astype(np.float32)  # (B, T, X, Y, Z)
    out = activity.draw(act, ["What is a GPU?", "Define entropy."], tmp_path / "a.png", "t")
    assert out.stat().st_size > 10_000
    assert activity._wrap("What is the atomic number of iron?").count("\n") == 1
