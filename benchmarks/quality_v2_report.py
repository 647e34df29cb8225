"""Markdown tables from the JSON reports of ``benchmarks/quality_v2.sh``.

    python benchmarks/quality_v2_report.py                      # print the tables
    python benchmarks/quality_v2_report.py --write docs/PERFORMANCE_ANALYSIS.md README.md
    python benchmarks/quality_v2_report.py --plot docs/figures/reliability_v2.png
    python benchmarks/quality_v2_report.py --results docs/results/v3 --write README.md ...

With ``--write`` the section between ``<!-- BEGIN quality_v2 -->`` and
``<!-- END quality_v2 -->`` of each named file is replaced (nothing else is touched).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "v2"  # --results DIR for another run
TARGET = "celltext eval --model models/default"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _f(x, digits=3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def decoder_table() -> list[str]:
    rows = [
        "| task | mode | n | BLEU | embedding preservation | exact match | coherence "
        "| decode p50 ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for task, label in (("train", "exact embeddings of training answers (300)"),
                        ("unseen", "`test_unseen` answers"),
                        ("sentences", "held-out sentences (`data/heldout`)")):  # fmt: skip
        for mode in ("generative", "edit", "search", "search_k3_r8"):
            r = _load(f"dec_{task}_{mode}")
            if r is None:
                continue
            shown = r.get("rerank") or r  # a --rerank run reports its reranked block
            m = shown["metrics"]
            name = "search, 3 prototypes, 8 candidates each" if mode == "search_k3_r8" else mode
            rows.append(
                f"| {label} | {name} | {r['counts']['n']} | {_f(m['bleu'])} | "
                f"{_f(m['embedding_preservation'])} | {_f(m['exact_match'])} | "
                f"{_f(m['coherence'])} | {_f(shown['latency_ms'].get('p50'), 1)} |"
            )
    return rows


def e2e_table() -> list[str]:
    rows = [
        "| split | path | n | sem. sim. | BLEU | accuracy | abstention | answered sem. sim. | "
        "ECE | core answer top-1 | p50 ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for split, label in (("paraphrase", "`test_paraphrase`"), ("unseen", "`test_unseen`"),
                         ("heldout", "held-out paraphrases"),
                         ("natural", "held-out natural questions")):  # fmt: skip
        for path in ("generative", "production", "retrieval"):
            r = _load(f"e2e_{split}_{path}")
            if r is None:
                continue
            m = r["metrics"]
            if split == "natural":  # a mixed split: the answerable rows' text metrics
                m = {"semantic_similarity": m["answerable_semantic_similarity"],
                     "bleu": m["answerable_bleu"], "accuracy": m["answerable_best_guess_accuracy"],
                     "abstention_rate": m.get("answerable_abstention_rate"),
                     "calibration_error": m.get("calibration_error")}  # fmt: skip
            rows.append(
                f"| {label} | {path} | {r['counts']['n']} | {_f(m['semantic_similarity'])} | "
                f"{_f(m['bleu'])} | {_f(m.get('accuracy'))} | {_f(m.get('abstention_rate'))} | "
                f"{_f(m.get('answered_semantic_similarity'))} | "
                f"{_f(m.get('calibration_error'))} | {_f(m.get('answer_top1'))} | "
                f"{_f(r['latency_ms'].get('p50'), 1)} |"
            )
    return rows


def pooled_ece() -> tuple[float | None, list[dict]]:
    """ECE over test_paraphrase + test_unseen (production), from the per-bin sums."""
    bins = [[0, 0.0, 0] for _ in range(15)]
    for name in ("e2e_paraphrase_production", "e2e_unseen_production"):
        r = _load(name)
        if r is None or "calibration_bins" not in r:
            return None, []
        for b, (n, conf, hit) in enumerate(r["calibration_bins"]):
            bins[b][0] += n
            bins[b][1] += conf
            bins[b][2] += hit
    total = sum(b[0] for b in bins)
    ece = sum(abs(c - h) for n, c, h in bins if n) / max(total, 1)
    diagram = [{"bin": i / 15, "n": n, "confidence": c / n, "accuracy": h / n}
               for i, (n, c, h) in enumerate(bins) if n]  # fmt: skip
    return ece, diagram


def natural_lines() -> list[str]:
    """The held-out natural set's served-answer metrics and risk-coverage points."""
    r = _load("e2e_natural_production")
    if r is None:
        return []
    m = r["metrics"]
    keys = ("served_wrong_rate", "answerable_correct_rate", "coverage",
            "answerable_abstention_rate", "unanswerable_abstention_rate")  # fmt: skip
    shown = ", ".join(f"{k} {m[k]:.3f}" for k in keys if m.get(k) is not None)
    lines = ["", f"Held-out natural questions (`--split heldout_natural`, n={r['counts']['n']}): "
             f"{shown}."]  # fmt: skip
    curve = r.get("risk_coverage") or {}
    points = curve.get("points") or []
    if points:
        every = max(1, len(points) // 10)
        lines.append(
            f"Risk-coverage (AURC {curve.get('aurc', 0):.3f}; threshold: coverage / risk): "
            + "; ".join(
                f"{p['threshold']:.2f}: {p['coverage']:.2f} / {p['risk'] or 0:.3f}"
                for p in points[::every]
            )
        )
    return lines


def section() -> str:
    rel = RESULTS.relative_to(ROOT) if RESULTS.is_relative_to(ROOT) else RESULTS
    lines = [
        f"Measured by `OUT={rel} bash benchmarks/quality_v2.sh` (JSON in `{rel}/`), tables",
        f"by `python benchmarks/quality_v2_report.py --results {rel}`; 2 CPU cores,",
        "one torch thread per evaluation, two evaluations at a time.",
        "`--limit 500` samples are fixed-seed.", "",
        "Decoder (embedding -> text; `celltext eval --decoder-only --decode-mode MODE`):", "",
    ]  # fmt: skip
    lines += decoder_table()
    lines += [
        "", "Question -> answer (`celltext eval`; production = the answer selector with",
        "abstention; its text is scored on the best candidate also where it abstains):", "",
    ]  # fmt: skip
    lines += e2e_table()
    ece, diagram = pooled_ece()
    oos = _load("oos_production")
    lines.append("")
    if ece is not None:
        lines.append(f"Calibration error pooled over `test_paraphrase` + `test_unseen` "
                     f"(production, 15 bins): **{ece:.3f}**.")  # fmt: skip
    if oos is not None:
        per = ", ".join(f"{k} {v['abstention_rate']:.2f}" for k, v in oos["per_domain"].items())
        lines.append(f"Out-of-scope questions (`--split out_of_scope`, n={oos['counts']['n']}): "
                     f"abstention {oos['metrics']['abstention_rate']:.3f} ({per}).")  # fmt: skip
    lines += natural_lines()
    for split in ("paraphrase", "unseen", "heldout"):
        r = _load(f"e2e_{split}_production")
        if r is not None and r["metrics"].get("calibration_error") is not None:
            lines.append(f"Calibration error within `{split}` (production): "
                         f"{r['metrics']['calibration_error']:.3f}.")  # fmt: skip
    if diagram:
        lines += [
            "",
            "Reliability (pooled): "
            + "; ".join(
                f"{d['confidence']:.2f}->{d['accuracy']:.2f} (n={d['n']})" for d in diagram
            ),
        ]
    return "\n".join(lines)


def plot_reliability(path: Path) -> None:
    """Reliability diagram of the production path, pooled over both test splits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ece, diagram = pooled_ece()
    if not diagram:
        raise SystemExit("no production reports with calibration bins")
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    conf = [d["confidence"] for d in diagram]
    acc = [d["accuracy"] for d in diagram]
    ax.plot(conf, acc, marker="o", label=f"celltext (ECE {ece:.3f})")
    for d in diagram:
        ax.annotate(str(d["n"]), (d["confidence"], d["accuracy"]), fontsize=6,
                    xytext=(3, -8), textcoords="offset points")  # fmt: skip
    ax.set_xlabel("confidence (mean per bin)")
    ax.set_ylabel("accuracy (semantic similarity >= 0.8)")
    ax.set_title("test_paraphrase + test_unseen, 15 bins", fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"wrote {path}", file=sys.stderr)


def _write(path: Path, text: str) -> None:
    doc = path.read_text()
    pattern = re.compile(r"(<!-- BEGIN quality_v2 -->\n).*?(<!-- END quality_v2 -->)", re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{path}: no quality_v2 section markers")
    path.write_text(pattern.sub(lambda m: m[1] + text + "\n" + m[2], doc))
    print(f"wrote the quality_v2 section of {path}", file=sys.stderr)


def main() -> int:
    global RESULTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--write", nargs="*", type=Path, default=[], metavar="FILE",
        help="Replace the quality_v2 section of each FILE (without: print the tables).",
    )  # fmt: skip
    parser.add_argument("--plot", type=Path, default=None, help="Write the reliability PNG.")
    parser.add_argument("--results", type=Path, default=RESULTS, help="The runs' JSON folder.")
    args = parser.parse_args()
    RESULTS = args.results.resolve()
    if args.plot:
        plot_reliability(args.plot)
    text = section()
    for path in args.write:
        _write(path, text)
    if not args.write and not args.plot:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
