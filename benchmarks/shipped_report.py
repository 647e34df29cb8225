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

from celltext.evaluation.bench import run_bench
from celltext.evaluation.evaluate import run_eval
from celltext.evaluation.report import fmt, md_table, update_section
from celltext.evaluation.resources import machine_info

SPLITS = ("test_paraphrase", "test_unseen")
COLUMNS = (
    "semantic_similarity", "bleu", "chrf", "rouge_l", "exact_match", "coherence",
    "core_cosine", "answer_top1", "fallback_rate", "unknown_token_rate",
)  # fmt: skip
TARGETS = {"semantic_similarity": 0.85, "bleu": 0.70}


def _runs(rerank: int) -> list[tuple[str, dict[str, Any]]]:
    """(name, run_eval keyword arguments) of every evaluation in the report."""
    runs = []
    for split in SPLITS:
        runs.append((f"eval_{split}_generative", {"ref": None, "split": split, "fallback": False}))
        runs.append((f"eval_{split}_production", {"ref": None, "split": split, "fallback": True}))
        runs.append((f"eval_{split}_retrieval", {"ref": "retrieval", "split": split}))
    runs.append(
        (
            "eval_test_unseen_decoder_only",
            {
                "ref": None,
                "split": "test_unseen",
                "fallback": False,
                "decoder_only": True,
                "rerank": rerank,
            },
        )
    )
    return runs


def _command(name: str, kw: dict[str, Any]) -> str:
    parts = ["celltext eval"]
    if kw.get("ref"):
        parts.append(f"--model {kw['ref']}")
    parts.append(f"--split {kw['split']}")
    if kw.get("ref") != "retrieval" and not kw.get("fallback", True):
        parts.append("--no-fallback")
    if kw.get("decoder_only"):
        parts.append("--decoder-only")
    if kw.get("rerank", 0) > 1:
        parts.append(f"--rerank {kw['rerank']}")
    return " ".join(parts) + " --json"


def _eval_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for rep in results.values():
        m = rep["metrics"]
        lat = rep["latency_ms"]
        rows.append(
            [f"`{rep['command']}`", fmt(rep["counts"]["n"]), *(fmt(m.get(c)) for c in COLUMNS),
             fmt(lat.get("p50"), 1)]
        )  # fmt: skip
        if "rerank" in rep:
            rr = rep["rerank"]
            rows.append(
                [f"  ↳ best of {rr['candidates']} (reranked by teacher cosine)", "",
                 *(fmt(rr["metrics"].get(c)) for c in COLUMNS), fmt(rr["latency_ms"].get("p50"), 1)]
            )  # fmt: skip
    return rows


def _targets(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for split in SPLITS:
        m = results[f"eval_{split}_generative"]["metrics"]
        for key, target in TARGETS.items():
            value = m.get(key)
            gap = "" if value is None or value >= target else f" (short by {target - value:.3f})"
            verdict = "met" if value is not None and value >= target else "missed"
            lines.append(f"- `{split}` {key} = {fmt(value)} vs target {target}: {verdict}{gap}")
    dec = results["eval_test_unseen_decoder_only"]["metrics"]
    for key, target in {"bleu": 0.45, "embedding_preservation": 0.80, "coherence": 0.70}.items():
        value = dec.get(key)
        ok = value is not None and value >= target
        lines.append(
            f"- decoder-only `test_unseen` {key} = {fmt(value)} vs target {target}: "
            f"{'met' if ok else 'missed'}"
        )
    return lines


def _bench_rows(bench: dict[str, Any]) -> list[list[str]]:
    rows = []
    for stage, lat in bench["latency_ms"].items():
        thr = bench["throughput_per_s"].get(stage)
        rows.append([stage, fmt(lat.get("p50"), 2), fmt(lat.get("p95"), 2), fmt(thr, 1)])
    return rows


def section_text(
    results: dict[str, dict[str, Any]],
    bench: dict[str, Any],
    command: str,
    onnx_md: str | None,
    load: dict[str, Any] | None,
    limit: int = 0,
) -> str:
    """The Markdown of the ``shipped`` section from the measured reports."""
    info = results["eval_test_paraphrase_generative"]["system"]
    lines = [
        "## The shipped model (`models/default`)",
        "",
        f"Command: `{command}` (every number below; JSON reports in `docs/results/`).",
        "",
        f"Model: `{json.dumps(info, sort_keys=True)}`",
        "",
        f"Machine: {json.dumps(bench['machine'], sort_keys=True)}",
        "",
        f"### Quality ({f'{limit} pairs per split' if limit else 'full splits'} of "
        f"release {results['eval_test_paraphrase_generative']['release']['version']})",
        "",
        md_table(["command", "n", *COLUMNS, "p50 ms"], _eval_rows(results)),
        "",
        "Targets (seeds' success criteria, generative path only):",
        "",
        *_targets(results),
        "",
        f"### Latency (`celltext bench`, {bench['iters']} questions at batch 1, warm; "
        f"throughput at batch {bench['throughput_per_s']['batch_size']})",
        "",
        md_table(["stage", "p50 ms", "p95 ms", "throughput /s"], _bench_rows(bench)),
        "",
        f"End-to-end p50 / retrieval p50 = {fmt(bench.get('ratio_end_to_end_to_retrieval'), 2)}; "
        f"targets: {json.dumps(bench.get('targets', {}), sort_keys=True)}; "
        f"parameters: {json.dumps(bench.get('params', {}), sort_keys=True)}; "
        f"memory: {json.dumps(bench.get('memory', {}), sort_keys=True)}.",
    ]
    onnx = bench.get("onnx")
    if onnx:
        mem = onnx["memory"]
        lines += [
            "",
            "The same stages on the onnxruntime backend (`celltext bench`, key `onnx`):",
            "",
            md_table(["stage", "p50 ms", "p95 ms", "throughput /s"], _bench_rows(onnx)),
            "",
            md_table(
                ["fresh process", "first answer s", "peak RSS MB", "imports torch"],
                [
                    [
                        side,
                        fmt(mem[side].get("first_answer_s"), 2),
                        fmt(mem[side].get("peak_rss_mb"), 1),
                        fmt(mem[side].get("torch_imported")),
                    ]
                    for side in ("onnx", "pytorch")
                ],
            ),  # fmt: skip
            "",
            "onnxruntime: end-to-end / retrieval "
            f"{fmt(onnx.get('ratio_end_to_end_to_retrieval'), 2)}; targets: "
            f"{json.dumps(onnx.get('targets', {}), sort_keys=True)}; ratios "
            f"onnx/pytorch: p50 {fmt(onnx.get('ratio_p50_onnx_to_pytorch'), 2)}, "
            f"peak RSS {fmt(onnx.get('ratio_peak_rss_onnx_to_pytorch'), 2)}.",
        ]
    if onnx_md:
        lines += ["", onnx_md.strip()]
    if load:
        lines += ["", "### HTTP load test (`benchmarks/load.py`)", "", "```json",
                  json.dumps(load, indent=1, sort_keys=True)[:3000], "```"]  # fmt: skip
    return "\n".join(lines)


def readme_text(results: dict[str, dict[str, Any]], bench: dict[str, Any], command: str) -> str:
    """The headline numbers, as the ``results`` section of the README."""
    keys = ("semantic_similarity", "bleu", "chrf", "rouge_l", "core_cosine", "fallback_rate")
    rows = [
        [f"`{rep['command']}`", fmt(rep["counts"]["n"]),
         *(fmt(rep["metrics"].get(k)) for k in keys)]
        for rep in results.values()
        if rep["task"] == "end_to_end"
    ]  # fmt: skip
    dec = results["eval_test_unseen_decoder_only"]
    lat = bench["latency_ms"]
    stages = [s for s in ("teacher", "core", "decoder", "end_to_end", "retrieval") if s in lat]
    lines = [
        f"Measured by `{command}` on {bench['machine'].get('cpu_count')} CPU cores "
        f"({bench['machine'].get('cpu')}, torch {bench['machine'].get('torch')}, no GPU); "
        "details, per-domain numbers and the ablation in "
        "[docs/PERFORMANCE_ANALYSIS.md](docs/PERFORMANCE_ANALYSIS.md), JSON in `docs/results/`.",
        "",
        md_table(["command", "n", *keys], rows),
        "",
        f"Decoder alone (`{dec['command']}`): BLEU {fmt(dec['metrics'].get('bleu'))}, "
        f"embedding preservation {fmt(dec['metrics'].get('embedding_preservation'))}, "
        f"coherence {fmt(dec['metrics'].get('coherence'))}.",
        "",
        "Latency p50 at batch 1, warm (`celltext bench`): "
        + ", ".join(f"{s} {fmt(lat[s].get('p50'), 1)} ms" for s in stages)
        + f"; trainable parameters {fmt(bench.get('params', {}).get('total_trainable'))}.",
    ]
    return "\n".join(lines)


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
    for name, kw in _runs(args.rerank):
        if args.model is not None and kw["ref"] is None:
            kw["ref"] = args.model
        t0 = time.perf_counter()
        rep = run_eval(release=release, limit=args.limit or None, **kw)
        rep["command"] = _command(name, kw)
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
