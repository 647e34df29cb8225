"""Helpers shared by every CLI command: logging to stderr, one JSON document on stdout."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

# Human-readable output and progress bars go to stderr so that ``--json`` stdout stays clean.
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print exactly one JSON document on stdout.")


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr (never stdout, which belongs to ``--json``)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def emit_json(obj: Any) -> None:
    """Print ``obj`` as the single JSON document of this command."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_default) + "\n")
    sys.stdout.flush()


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def emit_report(
    report: dict[str, Any], out: Path | None, json_out: bool, show: Callable[[dict], None]
) -> None:
    """Write ``report`` to ``out`` (if given), then print it: JSON on stdout or ``show``."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    if json_out:
        emit_json(report)
    else:
        show(report)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a clear error on stderr and return an Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)
