"""The ``shipped`` section of ``docs/PERFORMANCE_ANALYSIS.md`` and the ``results`` section
of the README, from the reports of the shipped model's evaluations and bench.

``results`` maps a run name (``eval_<split>_<path>``, ``eval_test_unseen_decoder_only``) to
its ``celltext eval --json`` report with a ``command`` key added; ``bench`` is a
``celltext bench --json`` report. ``benchmarks/shipped_report.py`` measures them (or reads
them back from ``docs/results/``) and calls these writers; nothing here measures.
"""

from __future__ import annotations

import json
from typing import Any

from celltext.reports.markdown import fmt, md_table

SPLITS = ("test_paraphrase", "test_unseen")
COLUMNS = (
    "semantic_similarity", "bleu", "chrf", "rouge_l", "exact_match", "coherence",
    "core_cosine", "answer_top1", "fallback_rate", "unknown_token_rate",
)  # fmt: skip
TARGETS = {"semantic_similarity": 0.85, "bleu": 0.70}
DECODER_TARGETS = {"bleu": 0.45, "embedding_preservation": 0.80, "coherence": 0.70}


def eval_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One table row per evaluation (and one per reranked block)."""
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


def target_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """The seeds' targets, met or missed, on the generative path and the decoder alone."""
    lines = []
    for split in SPLITS:
        m = results[f"eval_{split}_generative"]["metrics"]
        for key, target in TARGETS.items():
            value = m.get(key)
            gap = "" if value is None or value >= target else f" (short by {target - value:.3f})"
            verdict = "met" if value is not None and value >= target else "missed"
            lines.append(f"- `{split}` {key} = {fmt(value)} vs target {target}: {verdict}{gap}")
    dec = results["eval_test_unseen_decoder_only"]["metrics"]
    for key, target in DECODER_TARGETS.items():
        value = dec.get(key)
        ok = value is not None and value >= target
        lines.append(
            f"- decoder-only `test_unseen` {key} = {fmt(value)} vs target {target}: "
            f"{'met' if ok else 'missed'}"
        )
    return lines


def bench_rows(bench: dict[str, Any]) -> list[list[str]]:
    """One table row per bench stage: p50, p95, throughput."""
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
        md_table(["command", "n", *COLUMNS, "p50 ms"], eval_rows(results)),
        "",
        "Targets (seeds' success criteria, generative path only):",
        "",
        *target_lines(results),
        "",
        f"### Latency (`celltext bench`, {bench['iters']} questions at batch 1, warm; "
        f"throughput at batch {bench['throughput_per_s']['batch_size']})",
        "",
        md_table(["stage", "p50 ms", "p95 ms", "throughput /s"], bench_rows(bench)),
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
            md_table(["stage", "p50 ms", "p95 ms", "throughput /s"], bench_rows(onnx)),
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
