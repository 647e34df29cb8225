"""The ``scaling`` section of ``docs/PERFORMANCE_ANALYSIS.md``: tables, line plots, a
reading, all computed from the report dict of :mod:`celltext.experiments.scaling`
(``scaling.json``); nothing here measures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celltext.reports.markdown import fmt, md_table, update_section
from celltext.reports.plots import line_plot

SECTION = "scaling"


def write_report(report: dict[str, Any], doc: Path, figures: Path) -> Path:
    """Plots (``figures/scaling_*.png``) and the ``scaling`` section of ``doc``."""
    cost, data = report["lattice"], report["data"]
    series_t, series_m, series_q = {}, {}, {}
    for core in dict.fromkeys(r["core"] for r in cost):
        rows = [r for r in cost if r["core"] == core]
        cells = [r["cells"] for r in rows]
        series_t[f"{core} batch 1 (ms)"] = (cells, [r["p50_ms_batch1"] for r in rows])
        series_t[f"{core} batch {rows[0]['batch']} (ms)"] = (cells, [r["ms_batch"] for r in rows])
        series_m[f"{core} train step"] = (cells, [_nan(r["peak_mb_train_step"]) for r in rows])
        series_m[f"{core} forward"] = (cells, [_nan(r["peak_mb_forward"]) for r in rows])
        series_q[core] = (cells, [_nan(r["val_cosine"]) for r in rows])
    plots = {
        "lattice_time": line_plot(figures / "scaling_lattice_time.png", series_t, "lattice cells",
                                  "forward time (ms)", "Forward time vs lattice size", True, True),
        "lattice_memory": line_plot(figures / "scaling_lattice_memory.png", series_m,
                                    "lattice cells", "peak RSS growth (MB)",
                                    "Memory vs lattice size", logx=True),
        "lattice_quality": line_plot(figures / "scaling_lattice_quality.png", series_q,
                                     "lattice cells", "validation cosine",
                                     "Quality vs lattice size", logx=True),
    }  # fmt: skip
    sd_q, sd_t = {}, {}
    for core in dict.fromkeys(r["core"] for r in data):
        rows = [r for r in data if r["core"] == core]
        n = [r["train_pairs"] for r in rows]
        sd_q[core] = (n, [r["val_cosine"] for r in rows])
        sd_t[core] = (n, [r["train_time_s"] for r in rows])
    plots["data_quality"] = line_plot(figures / "scaling_data_quality.png", sd_q,
                                      "training pairs", "validation cosine",
                                      "Quality vs training-set size", logx=True)  # fmt: skip
    plots["data_time"] = line_plot(figures / "scaling_data_time.png", sd_t, "training pairs",
                                   "training time (s)", "Training time vs training-set size",
                                   logx=True)  # fmt: skip
    rel = {k: os.path.relpath(p, doc.parent) for k, p in plots.items()}
    lines = [
        "## Scaling analysis", "", f"Command: `{report['command']}`", "",
        f"Release `{report['release']}`, seed {report['seed']}, budget `{report['budget']}`; "
        f"machine: {report['machine']['cpu']}, {report['machine']['torch_threads']} torch "
        "threads. Peak memory is the growth of resident set size (VmHWM after a reset) during "
        "the measured call.", "",
        "### Lattice size", "",
        md_table(
            ["core", "lattice", "cells", "params", "p50 ms (b=1)", "batch", "ms (batch)",
             "peak MB fwd", "peak MB train step", "train s", "val cosine", "val top-1"],
            [[r["core"], "x".join(map(str, r["lattice"])), r["cells"], r["params"],
              r["p50_ms_batch1"], r["batch"], r["ms_batch"], r["peak_mb_forward"],
              r["peak_mb_train_step"], r["train_time_s"], r["val_cosine"],
              r["val_answer_top1"]] for r in cost],
        ),
        "", "A dash in the quality columns: not trained at that size within the budget "
        f"(cells above {report['train_max_cells']}).",
        "", "### Training-set size", "",
        md_table(["core", "train pairs", "train s", "val cosine", "val top-1"],
                 [[r["core"], r["train_pairs"], r["train_time_s"], r["val_cosine"],
                   r["val_answer_top1"]] for r in data]),
        "", "### Plots", "", *[f"![{k}]({v})" for k, v in rel.items()],
        "", "### Reading", "", *[f"- {s}" for s in _reading(report)],
    ]  # fmt: skip
    return update_section(doc, SECTION, "\n".join(lines))


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _ends(rows: list[dict[str, Any]]) -> Iterator[tuple[str, dict, dict]]:
    """Each core (in report order) with its first and last row: the smallest and the largest
    setting it was measured at."""
    for core in dict.fromkeys(r["core"] for r in rows):
        mine = [r for r in rows if r["core"] == core]
        yield core, mine[0], mine[-1]


def _reading(report: dict[str, Any]) -> list[str]:
    """Plain statements from the rows: growth of time, memory and quality per core."""
    out = []
    for core, a, b in _ends(report["lattice"]):
        out.append(
            f"{core}: from {a['cells']} to {b['cells']} cells ({fmt(b['cells'] / a['cells'], 1)}x)"
            f" the batch-{a['batch']} forward time grows "
            f"{fmt(b['ms_batch'] / max(a['ms_batch'], 1e-9), 1)}x, peak training-step memory "
            f"{fmt(a['peak_mb_train_step'], 0)} -> {fmt(b['peak_mb_train_step'], 0)} MB"
            f", parameters {fmt(b['params'] / max(a['params'], 1), 2)}x, validation cosine "
            f"{fmt(a['val_cosine'])} -> {fmt(b['val_cosine'])}."
        )
    for core, a, b in _ends(report["data"]):
        out.append(
            f"{core}: {a['train_pairs']} -> {b['train_pairs']} training pairs: training time "
            f"{fmt(a['train_time_s'], 1)} -> {fmt(b['train_time_s'], 1)} s, validation cosine "
            f"{fmt(a['val_cosine'])} -> {fmt(b['val_cosine'])}."
        )
    return out
