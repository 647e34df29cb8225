"""Redraw the ablation figures from the tables of the ``ablation`` section (no retraining).

Usage::

    .venv/bin/python benchmarks/replot_ablation.py --out docs/figures

``celltext ablate`` keeps its full report in ``<run dir>/ablation.json``, which is not
committed; the section's tables hold every number the figures show (parameters, core
cosine, semantic similarity, BLEU, embedding preservation and p50 latencies). This reads
them back into the report's shape and calls the same ``make_plots`` as ``celltext
ablate``, so a change of plot style does not need the 14-minute ablation again. It writes
the four ``ablation_*.png`` files into ``--out`` and nothing else.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from celltext.reports.ablation import SECTION, make_plots
from celltext.reports.markdown import read_section

_TABLE = re.compile(r"^### (Cores|Decoders) on `(\w+)`[^\n]*\n\n((?:\|[^\n]*\n?)+)", re.M)


def _number(cell: str) -> float | None:
    cell = cell.strip()
    return None if cell in ("–", "") else float(cell.replace(",", ""))


def _rows(table: str) -> list[dict[str, str]]:
    lines = [line.strip().strip("|").split("|") for line in table.strip().splitlines()]
    head = [h.strip() for h in lines[0]]
    return [dict(zip(head, (c.strip() for c in row), strict=True)) for row in lines[2:]]


def report_from_section(section: str) -> dict[str, Any]:
    """The parts of the ablation report that ``make_plots`` reads, from the tables."""
    report: dict[str, Any] = {"cores": {}, "decoders": {}, "retrieval": {"splits": {}}}
    for group, split, table in _TABLE.findall(section):
        for row in _rows(table):
            name = row[group[:-1].lower()]
            if group == "Cores":
                metrics = {"core_cosine": _number(row["core cos"]),
                           "semantic_similarity": _number(row["sem. sim."])}  # fmt: skip
                result = {"metrics": metrics,
                          "latency_ms": {"p50": _number(row["end-to-end p50 ms"])}}  # fmt: skip
                if name.startswith("retrieval"):
                    report["retrieval"]["splits"][split] = result
                    continue
                entry = report["cores"].setdefault(name, {"splits": {}})
                entry["info"] = {"params_core": int(_number(row["params"]))}
                entry["core_latency_ms"] = {"p50": _number(row["core p50 ms"])}
            else:
                metrics = {"bleu": _number(row["BLEU"]),
                           "embedding_preservation": _number(row["emb. preservation"])}  # fmt: skip
                result = {"metrics": metrics,
                          "latency_ms": {"p50": _number(row["decode p50 ms"])}}  # fmt: skip
                entry = report["decoders"].setdefault(name, {"splits": {}})
                entry["info"] = {"params_decoder": int(_number(row["params"]))}
            entry["splits"][split] = result
    if not report["cores"] or not report["decoders"]:
        raise ValueError("no core and decoder tables in the ablation section")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", type=Path, default=Path("docs/PERFORMANCE_ANALYSIS.md"))
    parser.add_argument("--out", type=Path, required=True, help="Figure directory to write.")
    args = parser.parse_args(argv)
    section = read_section(args.doc, SECTION)
    if section is None:
        raise SystemExit(f"{args.doc}: no {SECTION} section")
    for path in make_plots(report_from_section(section), args.out).values():
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
