"""Scaling analysis: cost and quality as the lattice grows and as the training set grows.

Usage::

    .venv/bin/python benchmarks/scaling.py                        # tiny budget, ~1 min, no docs
    .venv/bin/python benchmarks/scaling.py --budget full \
        --doc docs/PERFORMANCE_ANALYSIS.md --figures docs/figures   # ~10-15 min, 2-core CPU

Part 1, lattice size (5^3, 8^3, 15x15x11 cells) for the ``lattice3d`` and
``hybrid_cct_mamba`` cores (their default configs otherwise): parameters, forward latency
at batch 1 (p50) and batch 64, peak RSS growth of a batch-64 forward and of a batch-64
training step (forward + backward), and quality after training the core stage for the
budget's steps (validation cosine and answer top-1 from the trainer's validation).

Part 2, training-set size (fractions of the release's train split) for the ``mlp`` and
``hybrid_cct_mamba`` cores, trained for a fixed number of *epochs* so that cost grows with
the data: training wall time and validation quality.

Writes ``<out>/scaling.json``; only with ``--doc`` also the ``scaling`` section of that
document (only that section; the command line is written into it) and, with it, the
figures ``<figures>/scaling_*.png`` (``--figures``, default: ``figures/`` next to the doc).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from celltext.evaluation.evaluate import measure_latency
from celltext.evaluation.report import fmt, line_plot, md_table, update_section
from celltext.evaluation.resources import machine_info

LATTICES = ((5, 5, 5), (8, 8, 8), (15, 15, 11))
LATTICE_CORES = ("lattice3d", "hybrid_cct_mamba")
DATA_CORES = ("mlp", "hybrid_cct_mamba")
# ``train_max_cells``: larger lattices of that core get cost measurements only (training
# them for quality would take hours on a 2-core CPU; the cost table shows why).
BUDGETS = {
    "tiny": {"iters": 3, "batch": 8, "core_steps": 2, "train_batch": 8, "fractions": (0.5, 1.0),
             "epochs": 1.0, "max_train_pairs": 64, "lattices": LATTICES[:2],
             "train_max_cells": {}},
    "full": {"iters": 20, "batch": 32, "core_steps": 100, "train_batch": 16,
             "fractions": (0.125, 0.25, 0.5, 1.0), "epochs": 2.0, "max_train_pairs": 4000,
             "lattices": LATTICES, "train_max_cells": {"hybrid_cct_mamba": 512}},
}  # fmt: skip


# -- part 1: lattice cost ------------------------------------------------------------------------
def cost_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this (fresh) process: ``mode`` ``forward`` (latency + peak) or
    ``train`` (peak of one forward+backward step), for one core at one lattice size."""
    import celltext.models  # noqa: F401 -- registers every architecture
    from celltext.evaluation.resources import peak_delta
    from celltext.models.zoo import count_parameters, create_model

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    dim, batch = spec["dim"], spec["batch"]
    model = create_model(spec["core"], "core", dim=dim, lattice={"size": tuple(spec["lattice"])})
    xb = torch.randn(batch, dim)
    if spec["mode"] == "train":
        model.train()

        def step() -> None:
            model.zero_grad(set_to_none=True)
            model(xb).pow(2).mean().backward()

        return {"peak_mb_train_step": peak_delta(step)}
    model.eval()
    x1 = torch.randn(spec["iters"], dim)
    with torch.inference_mode():
        peak = peak_delta(lambda: model(xb))  # first: nothing freed yet to reuse
        lat = measure_latency(
            lambda i: model(x1[int(i) : int(i) + 1]), [str(i) for i in range(spec["iters"])]
        )
        t0 = time.perf_counter()
        model(xb)
        ms_batch = (time.perf_counter() - t0) * 1000.0
    return {
        "params": count_parameters(model),
        "p50_ms_batch1": lat["p50"],
        "ms_batch": round(ms_batch, 2),
        "peak_mb_forward": peak,
    }


def lattice_cost(
    core: str, size: tuple[int, int, int], iters: int, dim: int, batch: int, threads: int
) -> dict[str, Any]:
    """Parameters, forward time and peak memory of one core at one size; each measurement
    runs in a fresh Python process so that no memory freed earlier hides the peak."""
    import subprocess

    row: dict[str, Any] = {"core": core, "lattice": list(size), "cells": int(np.prod(size)),
                           "batch": batch}  # fmt: skip
    for mode in ("forward", "train"):
        spec = {"core": core, "lattice": list(size), "iters": iters, "dim": dim,
                "batch": batch, "threads": threads, "mode": mode}  # fmt: skip
        proc = subprocess.run(
            [sys.executable, __file__, "--cost-worker", json.dumps(spec)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return row


# -- training helpers ----------------------------------------------------------------------------
def _train_core(
    base: str, release: str, seed: int, threads: int, overrides: list[str], out: Path, teacher
) -> dict[str, Any]:
    from celltext.training.args import Preset
    from celltext.training.presets import apply_overrides, load_preset
    from celltext.training.trainer import train

    data = load_preset(base).to_dict()
    core_name = next(o.split("=", 1)[1] for o in overrides if o.startswith("core.name="))
    if data["core"]["name"] != core_name:
        data["core"]["config"] = {}
    for name in ("decoder", "core", "finetune"):
        data["stages"][name]["enabled"] = name == "core"
    common = [f"seed={seed}", f"data.release={release}", f"threads={threads}",
              "registry.register=false"]  # fmt: skip
    preset = Preset.from_dict(apply_overrides(data, common + overrides))
    t0 = time.perf_counter()
    result = train(preset, out, overwrite=True, register=False, progress=False, teacher=teacher)
    m = result.metrics
    return {
        "train_time_s": round(time.perf_counter() - t0, 2),
        "val_cosine": m.get("val/cosine", m.get("core/val/cosine")),
        "val_answer_top1": m.get("val/retrieval_top1", m.get("core/val/retrieval_top1")),
    }


def lattice_quality(args, budget, core, size, teacher) -> dict[str, Any]:
    """Train the core stage at one lattice size; validation quality and time."""
    lattice = json.dumps(list(size))
    return _train_core(
        args.preset, args.release, args.seed, args.threads,
        [f"core.name={core}", f"core.config.lattice.size={lattice}",
         f"stages.core.train.max_steps={budget['core_steps']}",
         f"stages.core.train.batch_size={budget['train_batch']}",
         f"data.max_train_pairs={budget['max_train_pairs']}"],
        Path(args.out) / "runs" / f"lattice-{core}-{'x'.join(map(str, size))}", teacher,
    )  # fmt: skip


def data_quality(args, budget, core, n_pairs, teacher) -> dict[str, Any]:
    """Train the core stage on ``n_pairs`` training pairs for the budget's epochs."""
    res = _train_core(
        args.preset, args.release, args.seed, args.threads,
        [f"core.name={core}", f"data.max_train_pairs={n_pairs}",
         "stages.core.train.max_steps=0", f"stages.core.train.epochs={budget['epochs']}"],
        Path(args.out) / "runs" / f"data-{core}-{n_pairs}", teacher,
    )  # fmt: skip
    return {"core": core, "train_pairs": n_pairs, **res}


# -- report --------------------------------------------------------------------------------------
def write_report(report: dict[str, Any], doc: Path, figures: Path) -> Path:
    """Plots and the ``scaling`` section of the document."""
    import os

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
    return update_section(doc, "scaling", "\n".join(lines))


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _reading(report: dict[str, Any]) -> list[str]:
    out = []
    for core in dict.fromkeys(r["core"] for r in report["lattice"]):
        rows = [r for r in report["lattice"] if r["core"] == core]
        a, b = rows[0], rows[-1]
        out.append(
            f"{core}: from {a['cells']} to {b['cells']} cells ({fmt(b['cells'] / a['cells'], 1)}x)"
            f" the batch-{a['batch']} forward time grows "
            f"{fmt(b['ms_batch'] / max(a['ms_batch'], 1e-9), 1)}x, peak training-step memory "
            f"{fmt(a['peak_mb_train_step'], 0)} -> {fmt(b['peak_mb_train_step'], 0)} MB"
            f", parameters {fmt(b['params'] / max(a['params'], 1), 2)}x, validation cosine "
            f"{fmt(a['val_cosine'])} -> {fmt(b['val_cosine'])}."
        )
    for core in dict.fromkeys(r["core"] for r in report["data"]):
        rows = [r for r in report["data"] if r["core"] == core]
        a, b = rows[0], rows[-1]
        out.append(
            f"{core}: {a['train_pairs']} -> {b['train_pairs']} training pairs: training time "
            f"{fmt(a['train_time_s'], 1)} -> {fmt(b['train_time_s'], 1)} s, validation cosine "
            f"{fmt(a['val_cosine'])} -> {fmt(b['val_cosine'])}."
        )
    return out


# -- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the scaling analysis (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", choices=sorted(BUDGETS), default="tiny")
    p.add_argument("--preset", default="quick")
    p.add_argument("--release", default="v1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="")
    p.add_argument("--doc", default="", help="Write the scaling section of this document.")
    p.add_argument("--figures", default="", help="Figure directory (with --doc).")
    p.add_argument("--no-train", action="store_true", help="Cost only (no quality runs).")
    p.add_argument("--json", action="store_true", help="Print the results as JSON on stdout.")
    p.add_argument("--cost-worker", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.cost_worker:
        sys.stdout.write(json.dumps(cost_worker(json.loads(args.cost_worker))) + "\n")
        return {}
    argv = sys.argv[1:] if argv is None else argv
    from celltext.data.release import load_release
    from celltext.paths import home_dir
    from celltext.teacher import load_teacher

    torch.set_num_threads(args.threads)
    budget = BUDGETS[args.budget]
    args.out = args.out or str(home_dir() / "scaling" / f"{args.release}-{args.budget}")
    teacher = load_teacher()
    n_train = len(load_release(args.release).pairs("train"))
    if budget["max_train_pairs"]:
        n_train = min(n_train, budget["max_train_pairs"])
    lattice_rows = []
    for core in LATTICE_CORES:
        for size in budget["lattices"]:
            row = lattice_cost(
                core, size, budget["iters"], teacher.dim, budget["batch"], args.threads
            )
            limit = budget["train_max_cells"].get(core, float("inf"))
            if not args.no_train and row["cells"] <= limit:
                row.update(lattice_quality(args, budget, core, size, teacher))
            else:
                row.update(train_time_s=None, val_cosine=None, val_answer_top1=None)
            torch.set_num_threads(args.threads)
            lattice_rows.append(row)
    data_rows = []
    if not args.no_train:
        for core in DATA_CORES:
            for frac in budget["fractions"]:
                data_rows.append(data_quality(args, budget, core, int(n_train * frac), teacher))
                torch.set_num_threads(args.threads)
    report = {
        "command": shlex.join([".venv/bin/python", "benchmarks/scaling.py", *argv]),
        "budget": args.budget, "release": args.release, "seed": args.seed,
        "machine": machine_info(), "lattice": lattice_rows, "data": data_rows,
        "train_max_cells": budget["train_max_cells"],
    }  # fmt: skip
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "scaling.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {Path(args.out) / 'scaling.json'}", file=sys.stderr)
    if data_rows and args.doc:
        figures = Path(args.figures) if args.figures else Path(args.doc).parent / "figures"
        print(f"writing the scaling section of {args.doc} and {figures}/", file=sys.stderr)
        write_report(report, Path(args.doc), figures)
    elif data_rows:
        print("docs not written (pass --doc docs/PERFORMANCE_ANALYSIS.md)", file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
