"""Training curves of one run from MLflow: loss and a validation metric per stage (PNG).

Usage::

    .venv/bin/python benchmarks/training_curves.py --model celltext/3 --out curves.png
    .venv/bin/python benchmarks/training_curves.py --run-dir .celltext/runs/quick-seed0 \\
        --out docs/figures/training_quick.png

``celltext train`` logs every stage's metrics at each logging step to MLflow
(``decoder/train/loss``, ``core/val/cosine``, ...; the store of ``celltext registry``,
``$MLFLOW_TRACKING_URI`` or ``.celltext/mlflow``). This reads their histories for the run
of a registered version (``--model NAME/VERSION``), of a run directory (its ``run.json``
names the MLflow run) or of ``--run-id``, and draws one panel per stage: the training loss,
the validation loss and, on the right axis, the stage's validation metric. Writes
``--out`` only. A checkpoint's ``metadata.json`` holds the final metrics, not their
history, so a model whose run is not in the store (``models/default`` in a fresh clone)
has no curves to draw.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

_KEY = re.compile(r"^(\w+)/(train|val)/(\w+)$")
# the validation metric drawn on the right axis, per stage (first one the run has)
QUALITY = ("cosine", "token_acc", "edit_token_acc")


def run_id_of(model: str | None, run_dir: Path | None, run_id: str | None) -> str:
    """The MLflow run id behind ``--model NAME/VERSION``, ``--run-dir`` or ``--run-id``."""
    from celltext.registry.tracking import mlflow_client

    if run_id:
        return run_id
    if run_dir is not None:
        stored = json.loads((run_dir / "run.json").read_text()).get("mlflow_run_id")
        if not stored:
            raise SystemExit(f"{run_dir}/run.json names no MLflow run (trained --no-register?)")
        return stored
    name, _, version = (model or "").partition("/")
    if not version:
        raise SystemExit("pass --model NAME/VERSION, --run-dir DIR or --run-id ID")
    return mlflow_client().get_model_version(name, version).run_id


def histories(run_id: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """``stage -> "train/loss" -> [(step, value)]`` for every per-stage metric of the run."""
    from celltext.registry.tracking import mlflow_client

    client = mlflow_client()
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for key in sorted(client.get_run(run_id).data.metrics):
        m = _KEY.match(key)
        if m is None:
            continue
        out.setdefault(m[1], {})[f"{m[2]}/{m[3]}"] = _curve(client.get_metric_history(run_id, key))
    return out


def _curve(history: list[Any]) -> list[tuple[int, float]]:
    """``(step, value)`` in logging order, each point at a later step than the one before:
    the run's final summary (every final metric again, logged at the last global step when
    the model is registered) and repeats at one step are left out."""
    points: list[tuple[int, float]] = []
    for h in sorted(history, key=lambda h: (h.timestamp, h.step)):
        if not points or h.step > points[-1][0]:
            points.append((int(h.step), float(h.value)))
    return points


def draw(curves: dict[str, dict[str, list[tuple[int, float]]]], out: Path, title: str) -> Path:
    """One panel per stage: train and val loss (left axis), a val metric (right axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in ("decoder", "core", "finetune") if s in curves] + sorted(
        s for s in curves if s not in ("decoder", "core", "finetune")
    )
    if not stages:
        raise SystemExit("the run has no per-stage metrics (stage/train/loss, ...)")
    fig, axes = plt.subplots(1, len(stages), figsize=(4.6 * len(stages), 3.6), dpi=100,
                             squeeze=False)  # fmt: skip
    for ax, stage in zip(axes[0], stages, strict=True):
        series = curves[stage]
        for key, style in (("train/loss", "-"), ("val/loss", "o-")):
            if key in series:
                steps, values = zip(*series[key], strict=True)
                ax.plot(steps, values, style, ms=3, lw=1, label=key)
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        quality = next((f"val/{q}" for q in QUALITY if f"val/{q}" in series), None)
        if quality is not None:
            right = ax.twinx()
            steps, values = zip(*series[quality], strict=True)
            right.plot(steps, values, "s--", ms=3, lw=1, color="tab:green", label=quality)
            right.set_ylabel(quality)
            more = right.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        ax.legend(handles, labels, fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="A registered version: NAME/VERSION.")
    parser.add_argument("--run-dir", type=Path, default=None, help="A celltext run directory.")
    parser.add_argument("--run-id", default=None, help="An MLflow run id.")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write.")
    args = parser.parse_args(argv)
    run_id = run_id_of(args.model, args.run_dir, args.run_id)
    curves = histories(run_id)
    label = args.model or (str(args.run_dir) if args.run_dir else run_id)
    print(f"wrote {draw(curves, args.out, f'Training curves of {label}')}", file=sys.stderr)
    summary: dict[str, Any] = {
        stage: {key: len(points) for key, points in series.items()}
        for stage, series in curves.items()
    }
    print(json.dumps({"run_id": run_id, "points": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
