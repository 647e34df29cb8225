"""``celltext bench``: latency, throughput, memory, parameters (celltext.evaluation.bench)."""

from __future__ import annotations

from pathlib import Path

import typer

from celltext.cli.common import JSON_OPTION, emit_report, err_console, fail, working


def bench_command(
    model: str | None = typer.Option(
        None, "--model", "-m", help="Checkpoint dir, name@alias, name/version, or 'retrieval'."
    ),
    release: str = typer.Option("v1", "--release", "-r", help="Release the questions come from."),
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
        help="Export dir of `celltext export onnx`: also bench the onnxruntime path against "
        "PyTorch (key 'onnx': batch-1 p50/p95, throughput, peak RSS of a fresh subprocess "
        "per path, onnx/pytorch ratios).",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the JSON here."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Latency p50/p95 per stage (batch 1, warm), throughput at batch 64, memory, params.

    The retrieval baseline is measured in the same run, so the end-to-end/retrieval latency
    ratio compares like with like.

    With --onnx DIR the report also has a key 'onnx': the onnxruntime Predictor against the
    PyTorch Predictor (CPU, greedy, fallback off, the same timed questions): latency p50/p95
    at batch 1 (warm), throughput at --batch, peak RSS of a fresh subprocess per path
    ('peak_rss_mb'; the onnxruntime one never imports torch), and the onnx/pytorch ratios of
    p50 latency and peak memory. The existing keys are unchanged.
    """
    import torch

    from celltext.data.release import load_release
    from celltext.evaluation.bench import run_bench

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

    table = Table(title=f"celltext bench: {report['model']} ({report['machine']['cpu']})")
    for col in (
        "stage",
        "p50 ms",
        "p95 ms",
        f"items/s @{report['throughput_per_s']['batch_size']}",
    ):
        table.add_column(col, justify="right" if col != "stage" else "left")
    for stage, lat in report["latency_ms"].items():
        tput = report["throughput_per_s"].get(stage)
        table.add_row(stage, f"{lat['p50']:.2f}", f"{lat['p95']:.2f}", f"{tput or 0:.1f}")
    err_console.print(table)
    if "ratio_end_to_end_to_retrieval" in report:
        err_console.print(f"end-to-end / retrieval p50: {report['ratio_end_to_end_to_retrieval']}x")
    err_console.print(f"params: {report.get('params')}  memory: {report['memory']}")
    onnx = report.get("onnx")
    if onnx:
        lat, torch_lat = onnx["latency_ms"], onnx["pytorch"]["latency_ms"]
        err_console.print(
            f"onnxruntime vs PyTorch (greedy, no fallback, batch 1): p50 {lat['p50']:.2f} vs "
            f"{torch_lat['p50']:.2f} ms ({onnx['ratio_p50_onnx_to_pytorch']}x); peak RSS "
            f"{onnx.get('peak_rss_mb')} vs {onnx['pytorch'].get('peak_rss_mb')} MB "
            f"({onnx['ratio_peak_rss_onnx_to_pytorch']}x); items/s @{onnx['batch_size']} "
            f"{onnx['throughput_per_s']} vs {onnx['pytorch']['throughput_per_s']}"
        )


def register(app: typer.Typer) -> None:
    """Add ``bench`` to the CLI."""
    app.command("bench")(bench_command)
