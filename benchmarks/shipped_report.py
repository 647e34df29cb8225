"""Measure the shipped model; print (or, with ``--write``, write) its performance section.

Usage::

    .venv/bin/python benchmarks/shipped_report.py                # ~10 min, 2-core CPU; prints
    .venv/bin/python benchmarks/shipped_report.py --write --onnx export/ --load load.json \
        --bench docs/results/bench.json --readme README.md

Runs, in one process, exactly what these commands report (``celltext eval``/``bench``):

- ``celltext eval --split S --no-fallback`` for ``test_paraphrase`` and ``test_unseen``
  (the generative path: the seeds' targets are measured here),
- ``celltext eval --split S`` (production path with the quality check and fallback),
- ``celltext eval --model retrieval --split S`` (the nearest-neighbour baseline),
- ``celltext eval --decoder-only --split test_unseen`` (embedding inversion, with best-of-N
  reranking),
- ``celltext bench`` (latency per stage and the ratio to retrieval),

and prints the Markdown of the ``shipped`` section of ``docs/PERFORMANCE_ANALYSIS.md``
on stdout; nothing is written. With ``--write`` it writes each JSON report to ``<out>/``
(default ``docs/results/``), replaces that section of ``--doc`` (only that section) and,
with ``--readme FILE``, the ``results`` section of FILE. With ``--onnx DIR`` the parity report
of ``celltext export onnx --out DIR`` is included; with ``--load FILE`` the JSON of
``benchmarks/load.py --out FILE``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from celltext.benchmarking.bench import run_bench
from celltext.benchmarking.resources import machine_info
from celltext.evaluation.evaluate import EvalRequest, run_eval
from celltext.reports.markdown import update_section
from celltext.reports.shipped import readme_text, section_text

SPLITS = ("test_paraphrase", "test_unseen")


def eval_requests(model: str | None, rerank: int, limit: int | None) -> dict[str, EvalRequest]:
    """Every evaluation in the report, by name (``model`` None: the shipped default)."""
    runs = {}
    for split in SPLITS:
        runs[f"eval_{split}_generative"] = EvalRequest(model, split, fallback=False, limit=limit)
        runs[f"eval_{split}_production"] = EvalRequest(model, split, limit=limit)
        runs[f"eval_{split}_retrieval"] = EvalRequest("retrieval", split, limit=limit)
    runs["eval_test_unseen_decoder_only"] = EvalRequest(
        model, "test_unseen", fallback=False, decoder_only=True, rerank=rerank, limit=limit
    )
    return runs


def command_line(request: EvalRequest) -> str:
    """The ``celltext eval`` command line that makes the same report."""
    parts = ["celltext eval"]
    if request.ref:
        parts.append(f"--model {request.ref}")
    parts.append(f"--split {request.split}")
    if request.ref != "retrieval" and not request.fallback:
        parts.append("--no-fallback")
    if request.decoder_only:
        parts.append("--decoder-only")
    if request.rerank > 1:
        parts.append(f"--rerank {request.rerank}")
    return " ".join(parts) + " --json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Model ref (default: models/default).")
    parser.add_argument("--release", default="v1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rerank", type=int, default=4)
    parser.add_argument("--iters", type=int, default=50, help="Bench questions at batch 1.")
    parser.add_argument("--limit", type=int, default=0, help="Pairs per split (0: all).")
    parser.add_argument("--onnx", type=Path, default=None, help="Export dir with parity.md.")
    parser.add_argument("--load", type=Path, default=None, help="benchmarks/load.py JSON.")
    parser.add_argument(
        "--bench", type=Path, default=None,
        help="JSON of `celltext bench --json --out FILE` (run alone on a quiet machine) "
        "instead of benching here.",
    )  # fmt: skip
    parser.add_argument(
        "--write", action="store_true",
        help="Write the JSON reports to --out, the `shipped` section of --doc and, with "
        "--readme, the `results` section of the README. Without it nothing is written: "
        "the sections are printed on stdout.",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("docs/results"), help="JSON dir.")
    parser.add_argument("--doc", type=Path, default=Path("docs/PERFORMANCE_ANALYSIS.md"))
    parser.add_argument("--readme", type=Path, default=None, help="README to update too.")
    args = parser.parse_args(argv)

    import torch

    from celltext.data.release import load_release

    torch.set_num_threads(args.threads)
    release = load_release(args.release)
    reports: dict[Path, dict[str, Any]] = {}  # written only with --write
    results: dict[str, dict[str, Any]] = {}
    for name, request in eval_requests(args.model, args.rerank, args.limit or None).items():
        t0 = time.perf_counter()
        rep = run_eval(request, release)
        rep["command"] = command_line(request)
        results[name] = reports[args.out / f"{name}.json"] = rep
        print(f"{name}: {time.perf_counter() - t0:.0f}s {rep['metrics']}", file=sys.stderr)
    if args.bench is not None:
        bench = json.loads(args.bench.read_text())
    else:
        bench = reports[args.out / "bench.json"] = run_bench(
            args.model, release, iters=args.iters, threads=args.threads
        )
    onnx_md = None
    if args.onnx is not None:
        onnx_md = (args.onnx / "parity.md").read_text()
    load = json.loads(args.load.read_text()) if args.load is not None else None
    command = "python benchmarks/shipped_report.py " + shlex.join(sys.argv[1:] if argv is None
                                                                   else argv)  # fmt: skip
    section = section_text(results, bench, command.strip(), onnx_md, load, args.limit)
    readme = readme_text(results, bench, command.strip()) if args.readme is not None else None
    if not args.write:
        print(section if readme is None else f"{section}\n\n{readme}")
        print("(nothing written: pass --write to update the files)", file=sys.stderr)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for path, rep in reports.items():
        path.write_text(json.dumps(rep, indent=1, sort_keys=True) + "\n")
    written = [update_section(args.doc, "shipped", section), args.out]
    if readme is not None:
        written.append(update_section(args.readme, "results", readme))
    print("wrote " + ", ".join(map(str, written)), file=sys.stderr)
    print(json.dumps({"machine": machine_info(), "written": [str(w) for w in written]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
