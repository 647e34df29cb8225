"""Figures of the generated documents: labelled scatter plots and line plots (PNG).

Labels are placed where they overlap no other label (:func:`place_labels`); a log axis
gets plain-number ticks (:func:`plain_log_ticks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def scatter_plot(
    path: Path,
    points: Sequence[dict[str, Any]],
    panels: Sequence[tuple[str, str, str, str]],
    title: str,
    logx: bool = False,
    label_key: str = "label",
) -> Path:
    """Labelled scatter plots (PNG), one panel per ``(x_key, y_key, xlabel, ylabel)``.

    Points lacking a panel's x or y value (None) are left out of that panel. Labels are
    placed where they overlap no other label (:func:`place_labels`); a log axis gets
    plain-number ticks at 1, 2 and 5 per decade and no minor labels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.4), dpi=110,
                             squeeze=False)  # fmt: skip
    placements = []
    for ax, (x, y, xlabel, ylabel) in zip(axes[0], panels, strict=True):
        sel = [p for p in points if p.get(x) is not None and p.get(y) is not None]
        ax.scatter([p[x] for p in sel], [p[y] for p in sel], s=36, zorder=3)
        if logx and all(p[x] > 0 for p in sel):
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        ax.margins(x=0.12, y=0.15)  # room for the labels of the outermost points
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        placements.append((ax, [(p[x], p[y], str(p[label_key])) for p in sel]))
    fig.suptitle(title)
    fig.tight_layout()
    for ax, labelled in placements:  # after the layout: positions are final
        place_labels(fig, ax, labelled)
    fig.savefig(path)
    plt.close(fig)
    return path


def plain_log_ticks(axis: Any) -> None:
    """Log-axis ticks at 1, 2, 5 x 10^k written as plain numbers (``0.5``, ``200,000``; no
    colliding minor labels such as ``2x10^0 3x10^0 4x10^0``)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1000 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


# Label offsets (points) tried in order: beside the marker, then further up or down with a
# leader line.
_OFFSETS = [(5, 4, "left"), (-5, 4, "right"), (5, -11, "left"), (-5, -11, "right")] + [
    (dx, dy, ha) for step in (1, 2, 3, 4) for dy in (12 * step + 4, -12 * step - 11)
    for dx, ha in ((6, "left"), (-6, "right"))
]  # fmt: skip


def place_labels(fig: Any, ax: Any, labelled: Sequence[tuple[float, float, str]]) -> None:
    """Annotate each ``(x, y, text)`` at the first offset where its text overlaps no label
    placed before and stays inside the axes (greedy; the last offset tried otherwise)."""
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken: list[Any] = []
    for x, y, text in sorted(labelled, key=lambda t: (-t[1], t[0])):  # top to bottom
        for dx, dy, ha in _OFFSETS:
            far = abs(dy) > 11
            ann = ax.annotate(
                text, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, fontsize=8,
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5"} if far else None,
            )  # fmt: skip
            box = ann.get_window_extent(renderer).expanded(1.04, 1.15)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(t) for t in taken):
                taken.append(box)
                break
            if (dx, dy, ha) != _OFFSETS[-1]:
                ann.remove()
        else:
            taken.append(box)


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
        plain_log_ticks(ax.xaxis)
    if logy:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
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
