"""Median forward latency of every registered core (eval mode, no grad) on this CPU.

Wall-clock medians and minima are reported, and the process CPU time: on a shared machine
the wall time grows with the other jobs (the load average is recorded), while the CPU time
of a one-thread run is much less sensitive to them (it still includes cache and
memory-bandwidth contention), so it approximates an idle machine from above.

Usage::

    .venv/bin/python benchmarks/core_forward.py                    # table on stdout
    .venv/bin/python benchmarks/core_forward.py --json             # one JSON document
    .venv/bin/python benchmarks/core_forward.py --cores hybrid_cct_mamba_v1 \
        --set mamba.n_layers=3 --set mamba.d_state=8 --threads 2 --repeats 20

``--params`` prints the parameter count of every component (two levels of submodules)
instead of timing. ``--set key=value`` overrides a config field of the benchmarked cores,
dotted for a sub-config (value parsed as JSON when possible, so
``--set lattice.size=[15,15,11]`` works). ``--paper`` uses ``HybridCCTMambaConfig.paper()``
for the hybrid. ``--backward`` also times forward+backward.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

from celltext.models.cores import HybridCCTMambaConfig
from celltext.models.zoo import count_parameters, create_model, list_models, resolve


def _parse_sets(items: list[str]) -> dict:
    out: dict = {}
    for item in items:
        key, _, raw = item.partition("=")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        try:
            node[leaf] = json.loads(raw)
        except json.JSONDecodeError:
            node[leaf] = raw
    return out


def _time(fn, repeats: int, warmup: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU milliseconds of ``repeats`` calls (after ``warmup``)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def bench_core(
    name: str, overrides: dict, batches: list[int], repeats: int, backward: bool, paper: bool
) -> dict:
    """Build ``name`` with ``overrides`` and time it at each batch size."""
    model = build(name, overrides, paper).eval()
    dim = model.cfg.dim
    row = {
        "core": name,
        "params": count_parameters(model),
        "dim": dim,
        "config": model.cfg.to_dict(),
    }
    for batch in batches:
        x = torch.randn(batch, dim)
        with torch.no_grad():
            times, cpu = _time(lambda x=x: model(x), repeats, warmup=2)
        row[f"fwd_ms_b{batch}"] = round(statistics.median(times), 2)
        row[f"fwd_min_ms_b{batch}"] = round(min(times), 2)
        # CPU time of the process: with one thread, about the wall time on an idle machine
        row[f"fwd_cpu_ms_b{batch}"] = round(statistics.median(cpu), 2)
        if backward:
            model.train()

            def step(x=x):
                model.zero_grad(set_to_none=True)
                model(x).square().mean().backward()

            times, _ = _time(step, max(3, repeats // 3), warmup=1)
            row[f"fwd_bwd_ms_b{batch}"] = round(statistics.median(times), 2)
            model.eval()
    return row


def component_params(model: torch.nn.Module, depth: int = 2) -> dict[str, int]:
    """Parameter counts of the submodules down to ``depth`` levels (dotted names)."""
    out: dict[str, int] = {}

    def visit(module: torch.nn.Module, prefix: str, level: int) -> None:
        for name, p in module.named_parameters(recurse=False):
            out[f"{prefix}{name}"] = p.numel()
        for name, child in module.named_children():
            n = count_parameters(child)
            if not n:
                continue
            out[f"{prefix}{name}"] = n
            parts = [c for c in child.children() if count_parameters(c)]
            if level < depth and len(parts) > 1:
                visit(child, f"{prefix}{name}.", level + 1)

    visit(model, "", 1)
    return out


def build(name: str, overrides: dict, paper: bool) -> torch.nn.Module:
    """The core ``name`` with the ``overrides`` that apply to it (or the paper config)."""
    torch.manual_seed(0)
    entry = resolve(name, "core")
    fields = entry.config_cls.__dataclass_fields__
    kept = {k: v for k, v in overrides.items() if k in fields}
    if paper and entry.config_cls is HybridCCTMambaConfig:
        return entry.cls(HybridCCTMambaConfig.paper(**kept))
    return create_model(name, kind="core", **kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cores", nargs="*", default=[e.name for e in list_models("core")])
    parser.add_argument("--batches", nargs="*", type=int, default=[64, 1])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--paper", action="store_true")
    parser.add_argument("--backward", action="store_true")
    parser.add_argument("--params", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = _parse_sets(args.sets)
    if args.params:
        counts = {}
        for n in args.cores:
            model = build(n, overrides, args.paper)
            counts[n] = {"total": count_parameters(model), **component_params(model)}
        if args.json:
            json.dump(counts, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            for n, comps in counts.items():
                print(f"{n}: {comps['total']:,d}")
                for k, v in comps.items():
                    if k != "total":
                        print(f"  {k:32s} {v:>10,d}")
        return 0
    rows = [
        bench_core(n, overrides, args.batches, args.repeats, args.backward, args.paper)
        for n in args.cores
    ]
    report = {
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "repeats": args.repeats,
        "loadavg_1min": os.getloadavg()[0],  # other jobs on the machine inflate wall times
        "results": rows,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    cols = [k for k in rows[0] if k.startswith("fwd")]
    print(
        f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}, "
        f"load average {report['loadavg_1min']:.1f}"
    )
    print(f"{'core':22s} {'params':>10s} " + " ".join(f"{c:>16s}" for c in cols))
    for r in rows:
        print(f"{r['core']:22s} {r['params']:>10,d} " + " ".join(f"{r[c]:>16.1f}" for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
