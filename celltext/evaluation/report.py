"""Writing results into ``docs/PERFORMANCE_ANALYSIS.md``: marked sections, tables, plots.

Each generating command owns one section of the document, delimited by
``<!-- BEGIN name -->`` / ``<!-- END name -->``; re-running the command replaces only its
own section, so the ablation, the scaling analysis and the GPU cross-check can be rerun
independently and every number in the document still comes from a command (each section
starts with the exact command line that wrote it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DOC_TITLE = "# Performance analysis\n"


def update_section(doc: Path, name: str, body: str) -> Path:
    """Replace (or append) the section ``name`` of the markdown file ``doc``."""
    doc = Path(doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    text = doc.read_text() if doc.exists() else DOC_TITLE
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(
        rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.DOTALL
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text if text.endswith("\n") else text + "\n")
    return doc


def read_section(doc: Path, name: str) -> str | None:
    """The body of section ``name`` of ``doc`` (None if absent)."""
    if not Path(doc).exists():
        return None
    m = re.search(
        rf"<!-- BEGIN {re.escape(name)} -->\n(.*?)\n<!-- END {re.escape(name)} -->",
        Path(doc).read_text(),
        re.DOTALL,
    )
    return m.group(1) if m else None


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats rounded, ints with thousands separators, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A GitHub markdown table (numbers right-aligned)."""
    align = ["---" if i == 0 else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(v, digits) for v in row) + " |")
    return "\n".join(lines)


def scatter_plot(
    path: Path,
    points: Sequence[dict[str, Any]],
    panels: Sequence[tuple[str, str, str, str]],
    title: str,
    logx: bool = False,
    label_key: str = "label",
) -> Path:
    """Labelled scatter plots (PNG), one panel per ``(x_key, y_key, xlabel, ylabel)``.

    Points lacking a panel's x or y value (None) are left out of that panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), dpi=110,
                             squeeze=False)  # fmt: skip
    for ax, (x, y, xlabel, ylabel) in zip(axes[0], panels, strict=True):
        sel = [p for p in points if p.get(x) is not None and p.get(y) is not None]
        ax.scatter([p[x] for p in sel], [p[y] for p in sel], s=36)
        for p in sel:
            ax.annotate(str(p[label_key]), (p[x], p[y]), textcoords="offset points",
                        xytext=(4, 4), fontsize=8)  # fmt: skip
        if logx and all(p[x] > 0 for p in sel):
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def line_plot(
    path: Path,
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
    logy: bool = False,
    xticks: Sequence[str] | None = None,
) -> Path:
    """One line per series ``name -> (xs, ys)`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if xticks is not None:
        first = next(iter(series.values()))[0]
        ax.set_xticks(list(first), list(xticks))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
