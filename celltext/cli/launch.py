"""Several training processes on this machine, with celltext's own error messages.

``celltext train --num-processes N`` starts N copies of the same command under
torch's elastic launcher (what ``torchrun --standalone --nproc_per_node N`` runs), in this
process. Launched from the shell, ``accelerate launch`` and ``torchrun`` end a failed run
with their own traceback of the failed child; here the child's one-line error (printed
by the main process) is all the user sees, and the exit status is the child's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping

from rich.markup import escape

from celltext.cli.common import err_console, fail

# ``python -m celltext`` runs this module as ``__main__``.
_PACKAGE_MAIN = "celltext.__main__"
# Set by a distributed launcher in each process it starts.
LAUNCHER_VARIABLES = ("WORLD_SIZE", "LOCAL_RANK", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
# How long a process other than the main one waits, after an error, for the main one to
# report it (see ``leave_the_report_to_the_main_process``).
MAIN_REPORT_WAIT_S = 30.0


def under_a_launcher(env: Mapping[str, str] = os.environ) -> bool:
    """Whether this process was started by a distributed launcher (accelerate, torchrun,
    MPI, or ``--num-processes`` itself)."""
    return any(key in env for key in LAUNCHER_VARIABLES)


def child_program() -> list[str]:
    """How to start this CLI again: as it was started (``python -m celltext``, the
    ``celltext`` console script, or another script that runs the CLI)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    script = getattr(main, "__file__", None)
    if spec is not None and spec.name == _PACKAGE_MAIN or script is None:
        return [sys.executable, "-m", "celltext"]
    return [sys.executable, script]


def leave_the_report_to_the_main_process(rank: int, message: str) -> None:
    """In process ``rank`` (not the main one), after an error that every process hits:
    wait until the launcher stops this process, so that the main one reports the error.

    A launcher (the elastic agent of ``accelerate launch``, ``torchrun`` and
    ``--num-processes``; mpirun) stops every process as soon as one has failed. Were this
    one to exit at once, the launcher could stop the main process before it printed the
    error, and the run would end without a word: on a busy machine the main process can
    be a second behind (about the time this one takes to exit). So this one waits; once
    the main process has reported and failed, the launcher stops this one (SIGTERM). If
    after ``MAIN_REPORT_WAIT_S`` the main process has not failed, the error was this
    process's own (the main one waits for it): it reports it and returns. Without a
    launcher it returns at once.
    """
    if not under_a_launcher():
        return
    try:
        time.sleep(MAIN_REPORT_WAIT_S)
    except KeyboardInterrupt:  # Ctrl-C reaches every process: the main one reports that
        return
    err_console.print(f"[bold red]error (process {rank}):[/] {escape(message)}", soft_wrap=True)


@contextlib.contextmanager
def _quiet_elastic() -> Iterator[None]:
    """The elastic agent logs every start and failure (rendezvous, "failed (exitcode: 1)
    local_rank: 0 ..."); the children report for themselves."""
    log = logging.getLogger("torch.distributed.elastic")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _signal_name(exitcode: int) -> str:
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def launch(num_processes: int, args: list[str]) -> int:
    """Run ``celltext <args>`` in ``num_processes`` processes on this machine (gloo on a
    CPU, NCCL on GPUs) and return the exit status: 0, or that of the first process that
    failed. A process that exited with an error has printed it (only the main process
    does, once); one killed by a signal is reported here."""
    from torch.distributed.elastic.multiprocessing.api import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # the agent's per-run directory (error files) goes away afterwards, not into /tmp for good
    logs = tempfile.TemporaryDirectory(prefix="celltext-launch-")
    config = LaunchConfig(
        logs_specs=DefaultLogsSpecs(log_dir=logs.name),
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=num_processes,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",  # torchrun --standalone: a store on a free local port
        rdzv_endpoint="localhost:0",
        max_restarts=0,  # every process would hit the same error again
        monitor_interval=0.1,
    )
    program = child_program()
    try:
        with _quiet_elastic():
            elastic_launch(config, entrypoint=program[0])(*program[1:], *args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        if failure.exitcode >= 0:
            return failure.exitcode or 1
        raise fail(f"process {rank} was killed by {_signal_name(failure.exitcode)}") from exc
    except SignalException as exc:  # Ctrl-C or a kill of this process: the agent stopped all
        raise fail(f"stopped by {exc.sigval.name}", code=128 + int(exc.sigval)) from exc
    finally:
        logs.cleanup()
    return 0


def command_line(ctx, drop: tuple[str, ...] = ()) -> list[str]:
    """The arguments that gave ``ctx`` (a click/typer context) its parameters, from the
    root command down, without the parameters named in ``drop``: what to run again."""
    chain = []
    while ctx is not None:
        chain.append(ctx)
        ctx = ctx.parent
    args: list[str] = []
    for level in reversed(chain):
        if level.parent is not None:
            args.append(level.info_name)
        for param in level.command.params:
            if param.name in drop or not param.opts:
                continue
            source = level.get_parameter_source(param.name)
            if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
                continue
            args.extend(_option_args(param, level.params[param.name]))
    return args


def _option_args(param, value) -> list[str]:
    """``param`` (a click Option) set to ``value``, as command-line arguments."""
    if getattr(param, "is_flag", False):
        if value:
            return [param.opts[0]]
        return [param.secondary_opts[0]] if param.secondary_opts else []
    values = value if getattr(param, "multiple", False) else [value]
    return [item for v in values if v is not None for item in (param.opts[0], str(v))]
