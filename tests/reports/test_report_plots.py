"""Plots of the performance document: labels that do not overlap, readable log ticks, and
the ablation figures redrawn from the committed tables."""

from __future__ import annotations

import importlib.util
import itertools

import matplotlib
import pytest

from celltext.paths import REPO_ROOT
from celltext.reports.markdown import read_section
from celltext.reports.plots import place_labels, plain_log_ticks

matplotlib.use("Agg")


def test_clustered_labels_do_not_overlap_and_log_ticks_are_plain():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
    points = [(112.9, 0.093, "lattice3d"), (117.5, 0.092, "mamba"), (133.9, 0.103, "mlp"),
              (147.3, 0.091, "hybrid_cct_mamba"), (183.7, 0.108, "cct"),
              (55.2, 0.977, "retrieval")]  # fmt: skip
    ax.scatter([p[0] for p in points], [p[1] for p in points])
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    ax.margins(x=0.12, y=0.15)
    fig.tight_layout()
    place_labels(fig, ax, points)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert sorted(t.get_text() for t in ax.texts) == sorted(p[2] for p in points)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all("times" not in t and "^" not in t for t in ticks), ticks
    plt.close(fig)


@pytest.fixture(scope="module")
def replot():
    spec = importlib.util.spec_from_file_location(
        "replot_ablation", REPO_ROOT / "benchmarks" / "replot_ablation.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ablation_tables_give_back_what_the_figures_show(replot, tmp_path):
    section = read_section(REPO_ROOT / "docs" / "PERFORMANCE_ANALYSIS.md", "ablation")
    report = replot.report_from_section(section)
    assert set(report["cores"]) >= {"mlp", "lattice3d", "cct"}
    assert {"test_paraphrase", "test_unseen"} <= set(report["retrieval"]["splits"])
    mlp = report["cores"]["mlp"]
    assert mlp["info"]["params_core"] > 0 and mlp["core_latency_ms"]["p50"] > 0
    assert report["decoders"]["ret"]["splits"]["test_unseen"]["metrics"]["bleu"] is not None
    assert replot.main(["--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("ablation_*.png"))) == 4
