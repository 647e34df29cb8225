"""Helpers shared by every CLI command: logging to stderr, one JSON document on stdout."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

# Human-readable output and progress bars go to stderr so that ``--json`` stdout stays clean.
# Not a terminal (a log file, CI): messages are not wrapped at 80 columns.
err_console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())

JSON_OPTION = typer.Option(False, "--json", help="Print exactly one JSON document on stdout.")


_VERBOSE = {"on": False}


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr (never stdout, which belongs to ``--json``)."""
    _VERBOSE["on"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    quiet_third_party()


def quiet_unless_verbose() -> None:
    """Warnings and errors only, unless ``celltext -v``: for commands whose stderr a user
    reads as part of the answer (``ask``), not as a progress log."""
    if not _VERBOSE["on"]:
        logging.getLogger().setLevel(logging.WARNING)


# Third-party chatter a user cannot act on: (logger, level) pairs and warning messages.
QUIET_LOGGERS = (("absl", logging.WARNING),)  # rouge_score: "Using default tokenizer."
QUIET_WARNINGS = (
    # raised by anything that introspects torch.distributed (celltext uses ReduceOp)
    (FutureWarning, r"`torch\.distributed\.reduce_op` is deprecated"),
)


def quiet_third_party() -> None:
    """Silence the INFO logs and deprecation warnings of dependencies (idempotent)."""
    for name, level in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for category, message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def emit_json(obj: Any) -> None:
    """Print ``obj`` as the single JSON document of this command."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_default) + "\n")
    sys.stdout.flush()


def emit_fields(result: dict[str, Any], json_out: bool, width: int = 0) -> None:
    """Print a flat result: JSON on stdout, or a ``key: value`` line per field on stderr
    (keys right-aligned to ``width``)."""
    if json_out:
        emit_json(result)
        return
    for key, value in result.items():
        err_console.print(f"{key:>{width}}: {value}")


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


@contextlib.contextmanager
def working(description: str) -> Iterator[Callable[[str, int, int], None]]:
    """A spinner with the elapsed time on stderr while long work runs, only on a terminal
    (logs and pipes get nothing); it disappears when the work is done. It yields
    ``update(stage, done, total)``, which names the stage in progress and, with a total,
    shows a bar and ``done/total`` for it."""
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.fields[count]}"), TimeElapsedColumn())  # fmt: skip
    disable = not err_console.is_terminal
    with Progress(*columns, console=err_console, transient=True, disable=disable) as bar:
        task = bar.add_task(description, total=None, count="")

        def update(stage: str, done: int, total: int) -> None:
            bar.update(
                task, description=f"{description}: {stage}", completed=done,
                total=total or None, count=f"{done}/{total}" if total else "",
            )  # fmt: skip

        yield update


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a clear one-line error on stderr and return an Exit to raise; under ``--json``
    stdout also gets one JSON document, ``{"error": message, "exit_code": code}``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if _json_requested():
        emit_json({"error": message, "exit_code": code})
    return typer.Exit(code)


def _json_requested() -> bool:
    """Whether the running command was given ``--json`` (its parameter is ``json_out`` or
    ``as_json``)."""
    try:  # typer >= 0.25 runs commands on its own copy of click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer, on click itself
        from click import get_current_context
    ctx = get_current_context(silent=True)
    return bool(ctx is not None and (ctx.params.get("json_out") or ctx.params.get("as_json")))
