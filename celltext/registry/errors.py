"""What can go wrong with the model registry, in three kinds the callers treat differently.

- :class:`RegistryNotFound`: the store answered, and the model, version or alias does not
  exist (MLflow's ``RESOURCE_DOES_NOT_EXIST`` / ``INVALID_PARAMETER_VALUE``): HTTP 404.
- :class:`RegistryUnavailable`: the store could not answer — unreachable or slow server,
  corrupt or misplaced SQLite database, refused credentials: HTTP 503, and never read as
  "no such alias".
- :class:`RegistryError`, the base: anything else that cannot be satisfied (nothing to roll
  back to, a malformed reference): HTTP 409.

:func:`store_errors` turns what MLflow and its store raise into the first two. No MLflow
import here: this module is on the CLI's fast path.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})
_MESSAGE_CHARS = 400
_OS_ERROR = re.compile(r"\[Errno -?\d+\] [^'\")]+")  # [Errno 111] Connection refused


class RegistryError(RuntimeError):
    """A registry reference or operation that cannot be satisfied."""


class RegistryNotFound(RegistryError):
    """The registry answered: no such registered model, version or alias."""


class RegistryUnavailable(RegistryError):
    """The registry could not answer (unreachable, timed out, corrupt or missing store)."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URI (None: not SQLite, or in memory)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.split("+", 1)[0] != "sqlite":
        return None
    path = rest.split("?", 1)[0]
    path = path[1:] if path.startswith("/") else path  # sqlite:///rel, sqlite:////abs
    return None if path in ("", ":memory:") else Path(path)


def store_label(uri: str) -> str:
    """Where the store is, fit for an error message: a database file, or scheme://host:port
    (never credentials, paths or queries of a server URI)."""
    path = sqlite_path(uri)
    if path is not None:
        return str(path)
    parts = urlsplit(uri)
    if parts.scheme and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}"
    return parts.scheme or uri


def first_line(exc: BaseException) -> str:
    """The first line of an error, cut to a readable length (SQLAlchemy appends its SQL);
    MLflow's failed HTTP requests shortened to their cause."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    if line.startswith("API request to "):
        if "timeout exception" in line or "timed out" in line:
            limit = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
            return f"no answer within {limit} s a try (MLFLOW_HTTP_REQUEST_TIMEOUT)"
        cause = _OS_ERROR.search(line)
        if cause:
            return f"cannot connect: {cause.group(0)}"
    return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 3] + "..."


def is_not_found(exc: BaseException) -> bool:
    """Whether MLflow said the thing does not exist (as opposed to not answering)."""
    return getattr(exc, "error_code", None) in NOT_FOUND_CODES


def unavailable(uri: str, exc: BaseException | str) -> RegistryUnavailable:
    """The :class:`RegistryUnavailable` for a store at ``uri`` that failed with ``exc``."""
    reason = exc if isinstance(exc, str) else first_line(exc)
    return RegistryUnavailable(f"model registry unavailable at {store_label(uri)}: {reason}")


@contextlib.contextmanager
def store_errors(uri: str, missing: str | None = None) -> Iterator[None]:
    """Raise MLflow's "does not exist" as :class:`RegistryNotFound` (``missing`` is its
    message; by default MLflow's own) and every other failure of the store as
    :class:`RegistryUnavailable`. A :class:`RegistryError` raised inside passes through."""
    try:
        yield
    except RegistryError:
        raise
    except Exception as exc:  # noqa: BLE001 -- MLflow, SQLAlchemy, requests, OSError, ...
        if is_not_found(exc):
            raise RegistryNotFound(missing or first_line(exc)) from exc
        raise unavailable(uri, exc) from exc
