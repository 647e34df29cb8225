"""``celltext train``: train a preset (decoder, core, finetune stages), resumable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import typer

from celltext.cli.common import JSON_OPTION, emit_json, err_console, fail


def single_process_launch_error(env: Mapping[str, str] = os.environ) -> str | None:
    """Why ``accelerate launch`` started one process where several were asked for, or None.

    Without ``--multi_gpu`` (also on CPUs) accelerate's plain launcher runs the script once,
    with ``MASTER_PORT`` set for ``--num_processes N > 1`` but no ``WORLD_SIZE``: training
    would silently run on one process. (torchrun and ``--multi_gpu`` set ``WORLD_SIZE``;
    MPI launches set their own variables.)
    """
    launched = "ACCELERATE_MIXED_PRECISION" in env and "MASTER_PORT" in env
    mpi = any(k in env for k in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"))
    if not launched or mpi or "WORLD_SIZE" in env:
        return None
    return (
        "accelerate launch started a single process: add --multi_gpu (on CPUs too), e.g. "
        "`accelerate launch --multi_gpu --num_processes 2 -m celltext train ...`, "
        "or use `torchrun --nproc_per_node 2 -m celltext train ...`"
    )


def _rank(env: Mapping[str, str] = os.environ) -> int:
    """This process's rank under a distributed launcher (0 without one)."""
    return int(env.get("RANK", "0") or 0)


def train_cmd(
    ctx: typer.Context,
    preset: str = typer.Option(
        None,
        "--preset",
        "-p",
        help="Preset name (configs/presets) or YAML path; optional with --resume.",
    ),
    seed: int = typer.Option(None, "--seed", help="Override the preset's seed."),
    out: Path = typer.Option(
        None, "--out", help="Run directory (default: <celltext home>/runs/<preset>-seed<seed>)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete an existing run in --out."),
    stage: str = typer.Option(
        "all",
        "--stage",
        help="decoder | core | finetune | correct | all (the preset's enabled stages).",
    ),
    register: bool = typer.Option(
        True, "--register/--no-register", help="Log to MLflow and register the final model."
    ),
    init: Path = typer.Option(
        None, "--init", help="Start from this checkpoint's weights (e.g. train only --stage core)."
    ),
    release: str = typer.Option(None, "--release", help="Override the data release version."),
    set_: list[str] = typer.Option(
        None, "--set", help="Override a preset field: --set stages.core.train.lr=3e-4 (repeat)."
    ),
    threads: int = typer.Option(None, "--threads", help="torch threads (overrides the preset)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
    num_processes: int = typer.Option(
        None,
        "--num-processes",
        min=1,
        help="Data-parallel processes on this machine (gloo on CPUs, NCCL on GPUs); "
        "for several machines use accelerate launch or torchrun.",
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Train a preset: tiny (tests, seconds), quick (CPU, minutes), default (the shipped
    model), paper (768-D teacher, 15x15x11 lattice; GPU). Prints the final checkpoint and
    its metrics; with --json as one JSON document."""
    from celltext.config import ConfigError
    from celltext.registry.checkpoint import CheckpointIntegrityError
    from celltext.training.presets import load_preset
    from celltext.training.rundir import RunDirError
    from celltext.training.trainer import train

    overrides = list(set_ or [])
    if seed is not None:
        overrides.append(f"seed={seed}")
    if release is not None:
        overrides.append(f"data.release={release}")
    if threads is not None:
        overrides.append(f"threads={threads}")
    if (launch_error := single_process_launch_error()) is not None:
        raise fail(launch_error, code=2)
    if preset is None and not resume:
        raise fail("pass --preset (or --resume --out DIR)")
    if preset is None and (overrides or out is None):
        raise fail("--resume without --preset needs --out and no overrides")
    stages = None if stage == "all" else [s.strip() for s in stage.split(",")]
    try:
        cfg = load_preset(preset, overrides) if preset is not None else None
        # every process checks, so none waits at a barrier for a main process that stopped
        existing_run_check(cfg, out, resume, overwrite)
        if num_processes is not None and num_processes > 1:
            _launch_processes(ctx, num_processes)
        result = train(
            cfg,
            out,
            resume=resume,
            overwrite=overwrite,
            stages=stages,
            register=None if register else False,
            progress=progress,
            init=init,
        )
    except (
        ConfigError,
        RunDirError,
        CheckpointIntegrityError,
        FileNotFoundError,
        ValueError,
    ) as exc:
        if _rank() != 0:  # every process hits the same error: the main one reports it
            from celltext.cli.launch import leave_the_report_to_the_main_process

            leave_the_report_to_the_main_process(_rank(), str(exc))
            raise typer.Exit(1) from exc
        raise fail(str(exc)) from exc
    if not result.is_main_process:
        return  # under `accelerate launch`, only the main process reports
    summary = result.to_dict()
    if json_out:
        emit_json(summary)
        return
    err_console.print(f"[bold green]done[/] in {result.elapsed_s:.1f}s -> {result.checkpoint}")
    for key in ("val/cosine", "val/token_acc", "val/perplexity", "val/exact_match"):
        if key in result.metrics:
            err_console.print(f"  {key} = {result.metrics[key]:.4f}")
    if result.registered:
        reg = result.registered
        err_console.print(f"  registered {reg['name']}/{reg['version']} {reg['aliases']}")
    typer.echo(str(result.checkpoint))


def existing_run_check(cfg, out: Path | None, resume: bool, overwrite: bool) -> None:
    """Raise the trainer's RunDirError when ``out`` already holds a run and neither
    --resume nor --overwrite was given (the trainer's own check runs on the main process
    only, which leaves the others waiting for it)."""
    from celltext.training.rundir import RUN_FILE, RunDirError, default_run_dir

    run_dir = out if out is not None else default_run_dir(cfg) if cfg is not None else None
    if run_dir is not None and (run_dir / RUN_FILE).is_file() and not (resume or overwrite):
        raise RunDirError(
            f"{run_dir} already holds a run; pass --resume to continue it "
            "or --overwrite to start over"
        )


def _launch_processes(ctx: typer.Context, num_processes: int) -> None:
    """Run this same command in ``num_processes`` processes, then exit with their status."""
    from celltext.cli.launch import command_line, launch, under_a_launcher

    if under_a_launcher():
        raise fail("--num-processes starts its own processes: not under a launcher", code=2)
    raise typer.Exit(launch(num_processes, command_line(ctx, drop=("num_processes",))))


def register(app: typer.Typer) -> None:
    """Add ``celltext train``."""
    app.command("train")(train_cmd)
