"""``celltext registry``: registered model versions, aliases, comparison, soups."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.table import Table

from celltext.cli.common import JSON_OPTION, emit_json, err_console, fail

registry_app = typer.Typer(
    help="Model registry (MLflow): versions, aliases (champion/challenger), lineage.",
    no_args_is_help=True,
)

NAME_ARG = typer.Argument("celltext", help="Registered model name.")


def _registry():
    from celltext.registry.models import ModelRegistry

    return ModelRegistry()


def _errors() -> tuple[type[Exception], ...]:
    """Errors shown as one line. Only modules already imported can have raised theirs, so
    none is imported here (checkpoint and soup import torch, which takes seconds)."""
    errors: list[type[Exception]] = [FileNotFoundError]
    for module, name in (
        ("celltext.registry.errors", "RegistryError"),  # RegistryUnavailable included
        ("celltext.registry.soup", "SoupError"),
        ("celltext.registry.checkpoint", "CheckpointIntegrityError"),
    ):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


T = TypeVar("T")


def _run(action: Callable[[], T], json_out: bool, human: Callable[[T], Any]) -> None:
    """Every registry command's frame: run ``action`` (its known errors become one line and
    exit 1), then emit its result as JSON or print ``human(result)`` on stderr."""
    try:
        result = action()
    except _errors() as exc:  # evaluated after the action, so its own modules' errors count
        raise fail(str(exc)) from exc
    if json_out:
        emit_json(result)
        return
    err_console.print(human(result))


# Metrics without a stage prefix are the final model's; stage metrics (``core/val/...``) and
# training curves (``*/train/*``) are for ``--all`` or the MLflow UI.
HEADLINE_SPLITS = ("val", "test")


def headline_metrics(keys: list[str]) -> list[str]:
    """The metrics that matter when comparing versions (all of them if none is a headline)."""
    picked = [k for k in keys if k.split("/", 1)[0] in HEADLINE_SPLITS]
    return picked or list(keys)


def _cell(value: float | None, best: bool) -> str:
    if value is None:
        return ""
    return f"[bold]{value:.4f}[/]" if best else f"{value:.4f}"


def compare_table(result: dict[str, Any], metrics: list[str]) -> Table:
    """One column per version, one row per lineage field and metric (best value in bold)."""
    versions = result["versions"]
    table = Table("", *(f"v{row['version']}" for row in versions), title=result["name"])
    for field in ("aliases", "dataset", "preset", "git_commit"):
        cells = [row.get(field) for row in versions]
        table.add_row(field, *(",".join(c) if isinstance(c, list) else str(c or "") for c in cells))
    table.add_section()
    for metric in metrics:
        values = [row.get(metric) for row in versions]
        known = [v for v in values if v is not None]
        best = (min if "loss" in metric or "perplexity" in metric else max)(known, default=None)
        bold = len(known) > 1
        table.add_row(metric, *(_cell(v, bold and v == best) for v in values))
    return table


def _table(rows: list[dict[str, Any]], metrics: list[str]) -> Table:
    table = Table("name", "version", "aliases", "dataset", "preset", *metrics)
    for r in rows:
        table.add_row(
            r["name"],
            str(r["version"]),
            ",".join(r["aliases"]),
            r["tags"].get("dataset_version", ""),
            r["tags"].get("preset", ""),
            *(f"{r['metrics'][m]:.4f}" if m in r["metrics"] else "" for m in metrics),
        )
    return table


@registry_app.command("list")
def list_cmd(
    name: str = typer.Argument(None, help="Only this registered model."),
    json_out: bool = JSON_OPTION,
) -> None:
    """List registered versions (newest first) with aliases and headline metrics."""
    _run(
        lambda: _registry().list_versions(name),
        json_out,
        lambda rows: _table(rows, ["val/cosine", "val/token_acc"]),
    )


@registry_app.command("show")
def show_cmd(
    ref: str = typer.Argument(..., help="name@alias, name/version or a checkpoint directory."),
    json_out: bool = JSON_OPTION,
) -> None:
    """One version (or checkpoint): registry info plus its checkpoint metadata."""
    from celltext.registry.checkpoint import read_metadata
    from celltext.registry.resolve import resolve_model_ref

    def describe() -> dict[str, Any]:
        info: dict[str, Any] = {}
        if not Path(ref).is_dir():
            reg = _registry()
            info = reg.describe(*reg.resolve(ref))
        path = resolve_model_ref(ref)
        info["path"] = str(path)
        info["metadata"] = read_metadata(path)
        return info

    def lines(info: dict[str, Any]) -> str:
        meta = info["metadata"]
        keys = ("architecture", "dataset", "parameters", "git", "metrics")
        return "\n".join(
            [f"[bold]{ref}[/] -> {info['path']}"] + [f"  {k}: {meta.get(k)}" for k in keys]
        )

    _run(describe, json_out, lines)


@registry_app.command("register")
def register_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint directory (e.g. models/default)."),
    name: str = typer.Option("celltext", "--name", help="Registered model name."),
    alias: str = typer.Option(
        "auto", "--alias", help="champion, challenger, none, or auto (champion if none yet)."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Register an existing checkpoint (verified first) as a new version."""
    _run(
        lambda: _registry().register_checkpoint(checkpoint, name=name, alias=alias),
        json_out,
        lambda info: f"{name}/{info['version']} <- {checkpoint} (aliases: {info['aliases']})",
    )


@registry_app.command("promote")
def promote_cmd(
    name: str = typer.Argument(..., help="Registered model name."),
    version: int = typer.Argument(None, help="Version to promote (or use --best)."),
    alias: str = typer.Option("champion", "--alias", help="champion or challenger."),
    best: str = typer.Option(None, "--best", help="Promote the best version by this metric."),
    mode: str = typer.Option("max", "--mode", help="max or min (with --best)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Point an alias (default champion) at a version; champions are kept in a history."""

    def promote() -> dict[str, Any]:
        reg = _registry()
        chosen = reg.best_version(name, best, mode)["version"] if best is not None else version
        if chosen is None:
            raise fail("give a VERSION or --best METRIC")
        return reg.promote(name, chosen, alias)

    _run(promote, json_out, lambda info: f"{name}@{alias} -> version {info['version']}")


@registry_app.command("rollback")
def rollback_cmd(name: str = NAME_ARG, json_out: bool = JSON_OPTION) -> None:
    """Move champion back to the previous champion version."""
    _run(
        lambda: _registry().rollback(name),
        json_out,
        lambda info: (
            f"{name}@champion -> version {info['version']} (was {info['rolled_back_from']})"
        ),
    )


@registry_app.command("compare")
def compare_cmd(
    name: str = NAME_ARG,
    versions: list[int] = typer.Argument(None, help="Versions to compare (default: all)."),
    all_metrics: bool = typer.Option(
        False, "--all", help="Every metric (stages, training curves), not just val/ and test/."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Metrics and lineage of versions side by side: a column per version, a row per metric."""

    def table(result: dict[str, Any]) -> Table:
        metrics = result["metrics"] if all_metrics else headline_metrics(result["metrics"])
        return compare_table(result, metrics)

    _run(lambda: _registry().compare(name, versions or None), json_out, table)


@registry_app.command("best")
def best_cmd(
    name: str = NAME_ARG,
    metric: str = typer.Option("val/cosine", "--metric", help="Validation metric to rank by."),
    mode: str = typer.Option("max", "--mode", help="max or min."),
    json_out: bool = JSON_OPTION,
) -> None:
    """The best version by a validation metric."""
    _run(
        lambda: _registry().best_version(name, metric, mode),
        json_out,
        lambda info: f"{name}/{info['version']}: {metric} = {info['metrics'][metric]:.4f}",
    )


@registry_app.command("soup")
def soup_cmd(
    out: Path = typer.Option(..., "--out", help="Directory of the averaged checkpoint."),
    refs: list[str] = typer.Argument(None, help="Checkpoints or registry refs to average."),
    name: str = typer.Option(None, "--name", help="Average the top-k versions of this model."),
    top_k: int = typer.Option(3, "--top-k", help="How many versions (with --name)."),
    metric: str = typer.Option("val/cosine", "--metric", help="Ranking metric (with --name)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Average the weights of several compatible checkpoints (a model soup)."""
    from celltext.registry.resolve import resolve_model_ref
    from celltext.registry.soup import make_soup

    def soup() -> dict[str, Any]:
        chosen = refs
        if name:
            top = _registry().top_versions(name, metric, top_k)
            chosen = [f"{name}/{r['version']}" for r in top]
        paths = [resolve_model_ref(r) for r in chosen or []]
        return {"checkpoint": str(make_soup(paths, out)), "ingredients": chosen}

    _run(
        soup,
        json_out,
        lambda r: f"soup of {len(r['ingredients'] or [])} checkpoints -> {r['checkpoint']}",
    )


def register(app: typer.Typer) -> None:
    """Add ``celltext registry ...``."""
    app.add_typer(registry_app, name="registry")
