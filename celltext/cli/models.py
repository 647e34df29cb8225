"""``celltext models``: the registered architectures and their parameter counts."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from celltext.cli.common import JSON_OPTION, emit_json, err_console, fail

models_app = typer.Typer(help="Registered model architectures.", no_args_is_help=True)

DIM_OPTION = typer.Option(
    None, "--dim", help="Teacher embedding dimension to size the models for (default: config)."
)


def _build(name: str, kind: str, dim: int | None) -> Any:
    from celltext.models import create_model

    overrides = {} if dim is None else {"dim": dim}
    return create_model(name, kind=kind, **overrides)


def describe_models(dim: int | None = None) -> list[dict[str, Any]]:
    """``[{name, version, kind, params, id}]`` for the default config of every architecture.

    ``params`` counts trainable parameters (tied tensors once).
    """
    import celltext.models  # noqa: F401  (registers every architecture)
    from celltext.models import count_parameters, list_models

    rows = []
    for entry in list_models():
        model = _build(entry.name, entry.kind, dim)
        rows.append(
            {
                "name": entry.family,
                "version": entry.version,
                "kind": entry.kind,
                "params": count_parameters(model),
                "id": entry.name,
            }
        )
    return sorted(rows, key=lambda r: (r["kind"], r["name"], r["version"]))


def _components(model: Any) -> dict[str, int]:
    """Trainable parameters per direct child module."""
    from celltext.models import count_parameters

    return {name: count_parameters(child) for name, child in model.named_children()}


@models_app.command("list")
def list_cmd(dim: int | None = DIM_OPTION, json_out: bool = JSON_OPTION) -> None:
    """List every registered architecture with its kind and parameter count."""
    rows = describe_models(dim)
    if json_out:
        emit_json(rows)
        return
    table = Table(title="celltext architectures (default configs)")
    for col in ("name", "version", "kind", "params", "id"):
        table.add_column(col, justify="right" if col in ("version", "params") else "left")
    for r in rows:
        table.add_row(r["name"], f"v{r['version']}", r["kind"], f"{r['params']:,}", r["id"])
    err_console.print(table)


@models_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="Architecture, e.g. ret or ret_v1."),
    kind: str | None = typer.Option(None, "--kind", help="core or decoder (if ambiguous)."),
    dim: int | None = DIM_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Show one architecture: default config and parameters per component."""
    import celltext.models  # noqa: F401
    from celltext.models import count_parameters, resolve

    try:
        entry = resolve(name, kind)  # type: ignore[arg-type]
    except KeyError as exc:
        raise fail(str(exc.args[0])) from exc
    model = _build(entry.name, entry.kind, dim)
    info = {
        "name": entry.family,
        "version": entry.version,
        "kind": entry.kind,
        "id": entry.name,
        "params": count_parameters(model),
        "components": _components(model),
        "config": model.cfg.to_dict(),
    }
    if json_out:
        emit_json(info)
        return
    err_console.print(f"[bold]{entry.name}[/] ({entry.kind}): {info['params']:,} parameters")
    for comp, n in info["components"].items():
        err_console.print(f"  {comp:<24} {n:>12,}")
    err_console.print(info["config"])


def register(app: typer.Typer) -> None:
    """Add ``celltext models ...`` to the main app."""
    app.add_typer(models_app, name="models")
