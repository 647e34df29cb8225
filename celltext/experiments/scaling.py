"""Scaling analysis: cost and quality as the lattice grows and as the training set grows.

Usage (``benchmarks/scaling.py`` is the same command)::

    .venv/bin/python -m celltext.experiments.scaling            # tiny budget, ~1 min, no docs
    .venv/bin/python -m celltext.experiments.scaling --budget full \
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
document and its figures (:mod:`celltext.reports.scaling`; ``--figures``, default:
``figures/`` next to the doc).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from celltext.benchmarking.resources import child_env, machine_info, peak_delta
from celltext.config import deep_merge
from celltext.evaluation.evaluate import measure_latency
from celltext.paths import DEFAULT_RELEASE

WORKER = "celltext.experiments.scaling"  # run as ``python -m WORKER --cost-worker SPEC``
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
    from celltext.models.zoo import count_parameters, create_model

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    dim, batch = spec["dim"], spec["batch"]
    model = create_model(spec["core"], "core", dim=dim, lattice={"size": tuple(spec["lattice"])})
    xb = torch.randn(batch, dim)  # (B, D)
    if spec["mode"] == "train":
        model.train()

        def step() -> None:
            model.zero_grad(set_to_none=True)
            model(xb).pow(2).mean().backward()

        return {"peak_mb_train_step": peak_delta(step)}
    model.eval()
    x1 = torch.randn(spec["iters"], dim)  # (iters, D)
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
    runs in a fresh Python process (``--cost-worker``) so that no memory freed earlier
    hides the peak."""
    row: dict[str, Any] = {"core": core, "lattice": list(size), "cells": int(np.prod(size)),
                           "batch": batch}  # fmt: skip
    for mode in ("forward", "train"):
        spec = {"core": core, "lattice": list(size), "iters": iters, "dim": dim,
                "batch": batch, "threads": threads, "mode": mode}  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", WORKER, "--cost-worker", json.dumps(spec)],
            capture_output=True, text=True, check=True, env=child_env(),
        )  # fmt: skip
        row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return row


# -- training ------------------------------------------------------------------------------------
def train_core(args: Any, core: str, changes: dict[str, Any], out: Path, teacher: Any):
    """Train the core stage alone from preset ``args.preset`` with ``core`` (its registered
    defaults unless it is the preset's own) and ``changes`` merged into the preset; the
    training time and the trainer's validation cosine and answer top-1."""
    from celltext.training.args import STAGES, Preset
    from celltext.training.presets import load_preset
    from celltext.training.trainer import train

    data = load_preset(args.preset).to_dict()
    if data["core"]["name"] != core:
        data["core"]["config"] = {}
    data["core"]["name"] = core
    data.update(seed=args.seed, threads=args.threads)
    data["data"]["release"] = args.release
    data["registry"]["register"] = False
    for name in STAGES:
        data["stages"][name]["enabled"] = name == "core"
    preset = Preset.from_dict(deep_merge(data, changes))
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
    changes = {
        "core": {"config": {"lattice": {"size": list(size)}}},
        "data": {"max_train_pairs": budget["max_train_pairs"]},
        "stages": {"core": {"train": {"max_steps": budget["core_steps"],
                                      "batch_size": budget["train_batch"]}}},
    }  # fmt: skip
    out = Path(args.out) / "runs" / f"lattice-{core}-{'x'.join(map(str, size))}"
    return train_core(args, core, changes, out, teacher)


def data_quality(args, budget, core, n_pairs, teacher) -> dict[str, Any]:
    """Train the core stage on ``n_pairs`` training pairs for the budget's epochs."""
    changes = {
        "data": {"max_train_pairs": n_pairs},
        "stages": {"core": {"train": {"max_steps": 0, "epochs": budget["epochs"]}}},
    }
    out = Path(args.out) / "runs" / f"data-{core}-{n_pairs}"
    return {"core": core, "train_pairs": n_pairs, **train_core(args, core, changes, out, teacher)}


# -- the analysis --------------------------------------------------------------------------------
def run_scaling(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Both parts; the report dict (``command``: the command line it records)."""
    from celltext.data.release import load_release
    from celltext.teacher import load_teacher

    torch.set_num_threads(args.threads)
    budget = BUDGETS[args.budget]
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
            torch.set_num_threads(args.threads)  # training may have changed it
            lattice_rows.append(row)
    data_rows = []
    if not args.no_train:
        for core in DATA_CORES:
            for frac in budget["fractions"]:
                data_rows.append(data_quality(args, budget, core, int(n_train * frac), teacher))
                torch.set_num_threads(args.threads)
    return {
        "command": command, "budget": args.budget, "release": args.release, "seed": args.seed,
        "machine": machine_info(), "lattice": lattice_rows, "data": data_rows,
        "train_max_cells": budget["train_max_cells"],
    }  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget", choices=sorted(BUDGETS), default="tiny")
    p.add_argument("--preset", default="quick")
    p.add_argument("--release", default=DEFAULT_RELEASE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="")
    p.add_argument("--doc", default="", help="Write the scaling section of this document.")
    p.add_argument("--figures", default="", help="Figure directory (with --doc).")
    p.add_argument("--no-train", action="store_true", help="Cost only (no quality runs).")
    p.add_argument("--json", action="store_true", help="Print the results as JSON on stdout.")
    p.add_argument("--cost-worker", default="", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None, program: str = "python -m celltext.experiments.scaling"):
    """Run the scaling analysis; ``program`` is how the recorded command line starts."""
    args = parse_args(argv)
    if args.cost_worker:
        sys.stdout.write(json.dumps(cost_worker(json.loads(args.cost_worker))) + "\n")
        return {}
    from celltext.paths import home_dir

    argv = sys.argv[1:] if argv is None else argv
    args.out = args.out or str(home_dir() / "scaling" / f"{args.release}-{args.budget}")
    report = run_scaling(args, shlex.join([*shlex.split(program), *argv]))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "scaling.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {Path(args.out) / 'scaling.json'}", file=sys.stderr)
    if report["data"] and args.doc:
        from celltext.reports.scaling import write_report

        figures = Path(args.figures) if args.figures else Path(args.doc).parent / "figures"
        print(f"writing the scaling section of {args.doc} and {figures}/", file=sys.stderr)
        write_report(report, Path(args.doc), figures)
    elif report["data"]:
        print("docs not written (pass --doc docs/PERFORMANCE_ANALYSIS.md)", file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
