"""The ``celltext`` command line. Each area registers its commands from its own module."""

from __future__ import annotations

import importlib

import typer

import celltext
from celltext.cli.common import quiet_third_party, setup_logging

quiet_third_party()

app = typer.Typer(
    name="celltext",
    help="celltext: compact text-to-text models around a 3D cellular network.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines ``register(app)``; the order is the order of ``celltext --help``.
_COMMAND_MODULES = (
    "celltext.cli.demo",
    "celltext.cli.data",
    "celltext.cli.teacher",
    "celltext.cli.models",
    "celltext.cli.train",
    "celltext.cli.registry",
    "celltext.cli.evaluate",
    "celltext.cli.bench",
    "celltext.cli.inference",
    "celltext.cli.serve",
    "celltext.cli.export",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"celltext {celltext.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    setup_logging(verbose)


for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry point."""
    app()
