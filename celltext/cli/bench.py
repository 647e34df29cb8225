"""``celltext bench``: latency, throughput, memory, parameters (celltext.benchmarking.bench)."""

from __future__ import annotations

from pathlib import Path

import typer

from celltext.cli.common import JSON_OPTION, emit_report, err_console, fail, working
from celltext.paths import DEFAULT_RELEASE


def bench_command(
    model: str | None = typer.Option(
        None, "--model", "-m", help="Checkpoint dir, name@alias, name/version, or 'retrieval'."
    ),
    release: str = typer.Option(
        DEFAULT_RELEASE, "--release", "-r", help="Release the questions come from."
    ),
    threads: int = typer.Option(2, "--threads", help="torch intra-op threads (set explicitly)."),
    iters: int = typer.Option(50, "--iters", help="Timed batch-1 calls per stage."),
    batch: int = typer.Option(64, "--batch", help="Batch size of the throughput runs."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (core and decoder)."),
    no_predictor: bool = typer.Option(
        False, "--no-predictor", help="Skip the serving Predictor (end_to_end) stage."
    ),
    onnx: Path | None = typer.Option(
        None,
        "--onnx",
        file_okay=False,
        help="Export dir of `celltext export onnx` (default: the model's built export, if "
        "any): also bench the onnxruntime backend (key 'onnx': the same stages, peak RSS and "
        "cold start of a fresh subprocess per backend, onnx/pytorch ratios).",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the JSON here."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Latency p50/p95 per stage (batch 1, warm), throughput at batch 64, memory, params.

    The retrieval baseline is measured in the same run, so the end-to-end/retrieval latency
    ratio compares like with like.

    The top level is the torch backend. With --onnx DIR, or when the model's export has been
    built (`celltext export onnx`, make demo), the report also has a key 'onnx': the same
    stages on the onnxruntime backend (same questions, settings and phrase bank), peak RSS
    and cold start of a fresh subprocess per backend (the onnxruntime one never imports
    torch), and the onnx/pytorch ratios of end-to-end p50 latency and peak memory.
    """
    import torch

    from celltext.benchmarking.bench import run_bench
    from celltext.data.release import load_release

    if iters < 1 or batch < 1:
        raise fail("--iters and --batch must be >= 1")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise fail("--device cuda but no CUDA device is available")
    try:
        rel = load_release(release)
        with working(f"bench {model or 'default model'} ({iters} iterations)"):
            report = run_bench(
                model, rel, iters, threads, device, not no_predictor, batch_size=batch, onnx=onnx
            )
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise fail(str(exc)) from exc
    emit_report(report, out, json_out, _print)


def _print(report: dict) -> None:
    from rich.table import Table

    onnx = report.get("onnx") or {}
    batch = report["throughput_per_s"]["batch_size"]
    table = Table(title=f"celltext bench: {report['model']} ({report['machine']['cpu']})")
    cols = ["stage", "torch p50 ms", "p95 ms", f"items/s @{batch}", "share", "floor ms"]
    if onnx:
        cols += ["onnx p50 ms", "p95 ms", f"items/s @{batch}", "share", "floor ms"]
    for col in cols:
        table.add_column(col, justify="right" if col != "stage" else "left")
    for stage, lat in report["latency_ms"].items():
        row = [stage, f"{lat['p50']:.2f}", f"{lat['p95']:.2f}",
               f"{report['throughput_per_s'].get(stage) or 0:.1f}"]  # fmt: skip
        row += _beside(report, stage)
        if onnx and stage in onnx["latency_ms"]:
            o = onnx["latency_ms"][stage]
            row += [f"{o['p50']:.2f}", f"{o['p95']:.2f}", f"{onnx['throughput_per_s'][stage]:.1f}"]
            row += _beside(onnx, stage)
        table.add_row(*row)
    err_console.print(table)
    err_console.print(
        "share: the stage's p50 over the end-to-end p50 (stages overlap: retrieval includes a "
        "teacher pass); floor: the networks' calls alone, timed here (one teacher pass, one "
        "index scan, one core call, one decoder call)"
    )
    if "ratio_end_to_end_to_retrieval" in report:
        err_console.print(f"end-to-end / retrieval p50: {report['ratio_end_to_end_to_retrieval']}x")
    err_console.print(f"params: {report.get('params')}  memory: {report['memory']}")
    if onnx:
        mem = onnx["memory"]
        err_console.print(
            f"onnxruntime: end-to-end / retrieval {onnx['ratio_end_to_end_to_retrieval']}x, "
            f"targets {onnx['targets']}; fresh process: first answer after "
            f"{mem['onnx'].get('first_answer_s')} s vs {mem['pytorch'].get('first_answer_s')} s, "
            f"peak RSS {mem['onnx'].get('peak_rss_mb')} vs {mem['pytorch'].get('peak_rss_mb')} MB"
        )


def _beside(report: dict, stage: str) -> list[str]:
    """The share of the end-to-end time and the floor of ``stage`` ("-" when not measured)."""
    share = report.get("share_of_end_to_end", {}).get(stage)
    floor = report.get("stage_floor_ms", {}).get(stage)
    return ["-" if share is None else f"{share:.0%}", "-" if floor is None else f"{floor:.2f}"]


def register(app: typer.Typer) -> None:
    """Add ``bench`` to the CLI."""
    app.command("bench")(bench_command)
