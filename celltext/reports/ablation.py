"""The ``ablation`` section of ``docs/PERFORMANCE_ANALYSIS.md``: tables, plots, a reading.

Everything here is computed from the ablation report dict (``ablation.json``, made by
:mod:`celltext.experiments.ablation`), including the prose of "Reading", so the document
never states a number the command did not make. ``benchmarks/replot_ablation.py`` redraws
the figures from the section's own tables.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from celltext.reports.markdown import fmt, md_table, update_section
from celltext.reports.plots import scatter_plot

SECTION = "ablation"
PRIMARY_CORE_SPLIT = "test_paraphrase"
PRIMARY_DECODER_SPLIT = "test_unseen"
DECODER_TARGETS = {"bleu": 0.45, "embedding_preservation": 0.80, "coherence": 0.70}
REPLOT_NOTE = (
    "Drawn by `celltext ablate`; to redraw them from the tables above without retraining: "
    "`python benchmarks/replot_ablation.py --out docs/figures`."
)


def _core_rows(report: dict[str, Any], split: str) -> list[list[Any]]:
    rows = []
    for name, res in report["cores"].items():
        m = res["splits"][split]["metrics"]
        rows.append([
            name, res["info"]["params_core"], res["train_time_s"], m.get("core_cosine"),
            m.get("answer_top1"), m["bleu"], m["chrf"], m["rouge_l"], m["semantic_similarity"],
            m["exact_match"], m["coherence"], res["core_latency_ms"]["p50"],
            res["splits"][split]["latency_ms"]["p50"],
        ])  # fmt: skip
    r = report["retrieval"]["splits"][split]
    m = r["metrics"]
    rows.append([
        "retrieval (baseline)", 0, 0.0, m.get("core_cosine"), m.get("answer_top1"), m["bleu"],
        m["chrf"], m["rouge_l"], m["semantic_similarity"], m["exact_match"], m["coherence"],
        None, r["latency_ms"]["p50"],
    ])  # fmt: skip
    return rows


CORE_HEADERS = [
    "core", "params", "train s", "core cos", "answer top-1", "BLEU", "chrF", "ROUGE-L",
    "sem. sim.", "exact", "coherence", "core p50 ms", "end-to-end p50 ms",
]  # fmt: skip
DECODER_HEADERS = [
    "decoder", "params", "train s", "BLEU", "chrF", "ROUGE-L", "emb. preservation", "exact",
    "coherence", "decode p50 ms",
]  # fmt: skip


def _decoder_rows(report: dict[str, Any], split: str) -> list[list[Any]]:
    rows = []
    for name, res in report["decoders"].items():
        m = res["splits"][split]["metrics"]
        rows.append([
            name, res["info"]["params_decoder"], res["train_time_s"], m["bleu"], m["chrf"],
            m["rouge_l"], m["embedding_preservation"], m["exact_match"], m["coherence"],
            res["splits"][split]["latency_ms"]["p50"],
        ])  # fmt: skip
    return rows


def make_plots(report: dict[str, Any], figures: Path) -> dict[str, Path]:
    """Quality against parameters and against latency, for cores and for decoders."""
    figures = Path(figures)
    cs, ds = _primary(report, "cores"), _primary(report, "decoders")
    cores = []
    for name, r in report["cores"].items():
        m = r["splits"][cs]["metrics"]
        cores.append({
            "label": name, "params": r["info"]["params_core"], "cos": m.get("core_cosine"),
            "sim": m["semantic_similarity"], "core_ms": r["core_latency_ms"]["p50"],
            "e2e_ms": r["splits"][cs]["latency_ms"]["p50"],
        })  # fmt: skip
    base = report["retrieval"]["splits"][cs]
    cores.append({
        "label": "retrieval", "params": None, "cos": base["metrics"].get("core_cosine"),
        "sim": base["metrics"]["semantic_similarity"], "core_ms": None,
        "e2e_ms": base["latency_ms"]["p50"],
    })  # fmt: skip
    decs = []
    for name, r in report["decoders"].items():
        m = r["splits"][ds]["metrics"]
        decs.append({
            "label": name, "params": r["info"]["params_decoder"], "bleu": m["bleu"],
            "pres": m["embedding_preservation"], "ms": r["splits"][ds]["latency_ms"]["p50"],
        })  # fmt: skip
    cos, sim = f"core cosine ({cs})", f"end-to-end semantic similarity ({cs})"
    return {
        "cores_params": scatter_plot(
            figures / "ablation_cores_quality_vs_params.png", cores,
            [("params", "cos", "core parameters", cos), ("params", "sim", "core parameters", sim)],
            "Cores: quality vs parameters (same decoder)", logx=True,
        ),
        "cores_latency": scatter_plot(
            figures / "ablation_cores_quality_vs_latency.png", cores,
            [("core_ms", "cos", "core p50 latency, batch 1 (ms)", cos),
             ("e2e_ms", "sim", "end-to-end p50 latency, batch 1 (ms)", sim)],
            "Cores: quality vs latency (retrieval baseline for reference)", logx=True,
        ),
        "decoders_params": scatter_plot(
            figures / "ablation_decoders_quality_vs_params.png", decs,
            [("params", "bleu", "decoder parameters", f"BLEU ({ds})"),
             ("params", "pres", "decoder parameters", f"embedding preservation ({ds})")],
            "Decoders: quality vs parameters",
        ),
        "decoders_latency": scatter_plot(
            figures / "ablation_decoders_quality_vs_latency.png", decs,
            [("ms", "bleu", "decode p50 latency, batch 1 (ms)", f"BLEU ({ds})"),
             ("ms", "pres", "decode p50 latency, batch 1 (ms)", f"embedding preservation ({ds})")],
            "Decoders: quality vs latency",
        ),
    }  # fmt: skip


def _primary(report: dict[str, Any], group: str) -> str:
    splits = list(next(iter(report[group].values()))["splits"])
    want = PRIMARY_CORE_SPLIT if group == "cores" else PRIMARY_DECODER_SPLIT
    return want if want in splits else splits[-1]


def _ranking(values: dict[str, float]) -> tuple[list[str], dict[str, int]]:
    """Names best first, and each name's rank (1 + how many are strictly better; ties share)."""
    order = sorted(values, key=lambda n: -values[n])
    return order, {n: 1 + sum(v > values[n] for v in values.values()) for n in values}


def reading(report: dict[str, Any]) -> list[str]:
    """Plain statements derived from the numbers (ranking, hybrid vs the rest, baseline)."""
    out = []
    cs = _primary(report, "cores")
    cores = report["cores"]
    for key, what in (("core_cosine", "core cosine (the core alone)"),
                      ("semantic_similarity", "end-to-end semantic similarity")):  # fmt: skip
        vals = {n: cores[n]["splits"][cs]["metrics"].get(key) or 0.0 for n in cores}
        order, rank = _ranking(vals)
        out.append(
            f"On `{cs}`, by {what}: "
            + ", ".join(f"{rank[n]}. {n} ({fmt(vals[n])})" for n in order)
            + "."
        )
    vals = {n: cores[n]["splits"][cs]["metrics"].get("core_cosine") or 0.0 for n in cores}
    order, rank = _ranking(vals)
    best = order[0]
    if "hybrid_cct_mamba" in cores and "mlp" in cores:
        h, m = cores["hybrid_cct_mamba"], cores["mlp"]
        lat = h["core_latency_ms"]["p50"] / max(1e-9, m["core_latency_ms"]["p50"])
        tt = h["train_time_s"] / max(1e-9, m["train_time_s"])
        pos = rank["hybrid_cct_mamba"]
        verdict = "ranks first" if pos == 1 else f"does not win (rank {pos} of {len(cores)})"
        out.append(
            f"By core cosine the hybrid CCT+Mamba core {verdict}. Against the MLP baseline it "
            f"has {fmt(h['info']['params_core'] / max(1, m['info']['params_core']), 2)}x the "
            f"parameters, {fmt(lat, 1)}x the core latency and {fmt(tt, 1)}x "
            "the training time, for a core-cosine difference of "
            f"{fmt(vals['hybrid_cct_mamba'] - vals['mlp'], 3)}."
        )  # fmt: skip
    key = "semantic_similarity"
    base = report["retrieval"]["splits"]
    for split in base:
        b = base[split]["metrics"][key]
        c = cores[best]["splits"][split]["metrics"][key]
        rel = "beats" if b > c else "does not beat"
        out.append(
            f"On `{split}` the retrieval baseline ({fmt(b)}) {rel} the end-to-end answers of "
            f"the best core, {best} ({fmt(c)}), in semantic similarity; exact match "
            f"{fmt(base[split]['metrics']['exact_match'])} vs "
            f"{fmt(cores[best]['splits'][split]['metrics']['exact_match'])}."
        )
    out.extend(_decoder_reading(report))
    b = report["budget"]
    out.append(
        f"Caveats: one seed ({report['config']['seed']}), {b['decoder_steps']} decoder and "
        f"{b['core_steps']} core steps per run, at most {b['eval_limit']} pairs per split; "
        "differences of a few hundredths are within run-to-run noise at such budgets."
    )
    return out


def _decoder_reading(report: dict[str, Any]) -> list[str]:
    ds = _primary(report, "decoders")
    decs = report["decoders"]
    score = {
        n: (
            decs[n]["splits"][ds]["metrics"]["bleu"],
            decs[n]["splits"][ds]["metrics"]["embedding_preservation"],
        )
        for n in decs
    }
    best = max(decs, key=lambda n: score[n])
    m = decs[best]["splits"][ds]["metrics"]
    gaps = ", ".join(
        f"{k} {fmt(m[k])} vs target {fmt(t, 2)} ({'met' if m[k] >= t else 'gap ' + fmt(t - m[k])})"
        for k, t in DECODER_TARGETS.items()
    )
    return [f"Best decoder on `{ds}` (by BLEU, then embedding preservation): {best}: {gaps}."]


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def write_ablation_report(report: dict[str, Any], doc: Path, figures: Path) -> Path:
    """Write the plots and the ``ablation`` section of ``doc``; return the doc path."""
    plots = make_plots(report, figures)
    rel = {k: os.path.relpath(p, Path(doc).parent) for k, p in plots.items()}
    cfg, b, mach = report["config"], report["budget"], report["machine"]
    lines = [
        "## Ablation: cores and decoders",
        "",
        f"Command: `{cfg.get('command') or 'celltext ablate'}`",
        "",
        f"Release `{report['release']['version']}` (sha256 `{report['release']['sha256'][:12]}…`),"
        f" base preset `{cfg['preset']}`, seed {cfg['seed']}, budget `{cfg['budget']}` "
        f"({b['decoder_steps']} decoder steps, {b['core_steps']} core steps, "
        f"{b['max_train_pairs'] or 'all'} training pairs, {b['eval_limit']} evaluation pairs "
        f"per split). Machine: {mach['cpu']}, {mach['torch_threads']} torch threads. "
        f"Total wall time {fmt(report['wall_s'], 0)} s.",
        "",
        "Cores are trained on the core stage only and evaluated end to end (generative path, "
        f"no fallback) with the same trained `{cfg['base_decoder']}` decoder; the retrieval "
        "baseline answers with the nearest training question's answer. Latency is batch 1, "
        "warm, teacher included for end to end.",
        "",
        "Sizes: "
        + ("every architecture takes the size fields of the preset's own core/decoder config "
           "(same name or an equivalent, e.g. lattice side, state width, layers, widths). "
           if cfg.get("match_sizes", True) else "registered default configs. ")
        + "Config overrides per variant: "
        + "; ".join(f"{group[:-1]} {n} `{_compact(r.get('arch_config', {}))}`"
                    for group in ("cores", "decoders") for n, r in report[group].items())
        + ".",
    ]  # fmt: skip
    for split in report["retrieval"]["splits"]:
        lines += [
            "",
            f"### Cores on `{split}`",
            "",
            md_table(CORE_HEADERS, _core_rows(report, split)),
        ]
    for split in next(iter(report["decoders"].values()))["splits"]:
        lines += ["", f"### Decoders on `{split}` (decode the teacher embedding of the answer)",
                  "", md_table(DECODER_HEADERS, _decoder_rows(report, split))]  # fmt: skip
    lines += ["", "### Plots", "", REPLOT_NOTE, ""]
    lines += [f"![{k}]({v})" for k, v in rel.items()]
    lines += ["", "### Reading", ""] + [f"- {s}" for s in reading(report)]
    return update_section(Path(doc), SECTION, "\n".join(lines))
