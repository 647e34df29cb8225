"""Request limits: body size (413), body read time (408) and the configured bounds (422).

:class:`BodyLimitMiddleware` refuses a body larger than ``max_bytes`` twice over: at once
when ``Content-Length`` says so, and while the body streams in (chunked uploads, or a
client that lies about its length), by raising a 413 ``HTTPException`` from ``receive`` —
FastAPI re-raises ``HTTPException`` while reading the body, so the client gets a clean 413.
It also gives the whole body ``timeout_s`` seconds from the start of the request: a client
that trickles its upload (one byte every few seconds) gets a 408 and the connection is
closed, instead of holding a request open for as long as it likes. uvicorn has no such
timeout of its own (``timeout_keep_alive`` only covers idle connections between requests).

The ``check_*`` helpers raise :class:`fastapi.exceptions.RequestValidationError`, so a
configured limit gives the same 422 body as a schema violation.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from celltext.textcheck import ECHO_CHARS, safe_echo, text_problem


class BodyTooLarge(HTTPException):
    """The request body is over the configured limit."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body too large: the limit is {limit} bytes")


class BodyTimeout(HTTPException):
    """The request body did not arrive within the configured time."""

    def __init__(self, limit: float):
        super().__init__(
            408,
            f"request body not received within {limit:g} s",
            headers={"Connection": "close"},
        )


class BodyLimitMiddleware:
    """Pure ASGI middleware enforcing a maximum request body size and read time."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await _send_error(send, 413, BodyTooLarge(self.max_bytes).detail)
            return
        received = 0
        started = False
        body_done = False
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout_s is None else loop.time() + self.timeout_s

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done or deadline is None:
                message = await receive()  # after the body: a disconnect, never timed
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    raise BodyTimeout(self.timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except (BodyTooLarge, BodyTimeout) as exc:  # raised outside FastAPI's body reading
            if started:
                raise
            await _send_error(send, exc.status_code, exc.detail)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _invalid(loc: tuple, msg: str, value) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


def check_question(question: str, max_chars: int, loc: tuple = ("body", "question")) -> None:
    """422 unless ``question`` is valid text, non-blank and at most ``max_chars`` characters."""
    problem = text_problem(question)
    if problem is not None:
        raise _invalid(loc, problem, None)
    if not question.strip():
        raise _invalid(loc, "question must not be empty", question)
    if len(question) > max_chars:
        raise _invalid(
            loc, f"question too long: {len(question)} characters, the limit is {max_chars}", None
        )


def check_text_size(text: str, max_chars: int, field: str) -> None:
    """422 unless ``text`` is at most ``max_chars`` characters."""
    if len(text) > max_chars:
        raise _invalid(
            ("body", field),
            f"{field} too long: {len(text)} characters, the limit is {max_chars}",
            None,
        )


def check_batch(items: Sequence, max_items: int, field: str) -> None:
    """422 unless the batch has at most ``max_items`` entries."""
    if len(items) > max_items:
        raise _invalid(
            ("body", field), f"batch too large: {len(items)} items, the limit is {max_items}", None
        )


def check_embedding_rows(rows: Sequence[Sequence[float]], dim: int, teacher: str) -> None:
    """422 unless every row has exactly ``dim`` numbers."""
    for i, row in enumerate(rows):
        if len(row) != dim:
            raise _invalid(
                ("body", "embeddings", i),
                f"wrong embedding size: row {i} has {len(row)} numbers, the model expects "
                f"{dim} (teacher {teacher})",
                None,
            )


ECHO_ITEMS = 10  # longest list (or dict) of client input repeated back in an error body
ECHO_DEPTH = 4


def finite_json(value, depth: int = 0):
    """``value`` made safe to echo back in an error body: every non-finite float as its
    string (strict JSON has no infinities), strings with lone surrogates escaped and cut to
    :data:`~celltext.textcheck.ECHO_CHARS` characters, bytes (a body that is not JSON, or not
    UTF-8) as text with the bad bytes escaped (``\\xff``), lists and dicts cut to
    :data:`ECHO_ITEMS` entries and :data:`ECHO_DEPTH` levels (a 422 never repeats a whole
    megabyte of input, and never crashes while encoding it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return safe_echo(value)
    if isinstance(value, (bytes, bytearray)):
        return echo_bytes(value)
    if isinstance(value, (dict, list, tuple)) and depth >= ECHO_DEPTH:
        return "..."
    if isinstance(value, dict):
        items = list(value.items())
        out = {safe_echo(str(k)): finite_json(v, depth + 1) for k, v in items[:ECHO_ITEMS]}
        if len(items) > ECHO_ITEMS:
            out["..."] = f"{len(items) - ECHO_ITEMS} more keys"
        return out
    if isinstance(value, (list, tuple)):
        out = [finite_json(v, depth + 1) for v in value[:ECHO_ITEMS]]
        if len(value) > ECHO_ITEMS:
            out.append(f"... {len(value) - ECHO_ITEMS} more items")
        return out
    return value


_NOT_JSON = "the body must be a JSON object, sent as UTF-8 with content-type application/json"


def echo_bytes(value: bytes) -> str:
    """Raw body bytes fit to repeat back, invalid UTF-8 escaped (``\\xff``) and cut to
    :data:`~celltext.textcheck.ECHO_CHARS` characters (FastAPI's own encoder calls
    ``bytes.decode()``, which raises on such a body: a 500)."""
    text = bytes(value[:ECHO_CHARS]).decode("utf-8", "backslashreplace")
    if len(text) <= ECHO_CHARS and len(value) <= ECHO_CHARS:
        return text
    return f"{text[: ECHO_CHARS // 2]}... ({len(value)} bytes)"


async def validation_error_handler(request, exc: RequestValidationError):
    """FastAPI's 422 body, safe for any input (``Infinity``, lone surrogates, huge bodies,
    bodies that are not UTF-8)."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    errors = [
        {**e, "msg": _NOT_JSON} if isinstance(e.get("input"), bytes) else e for e in exc.errors()
    ]
    encoded = jsonable_encoder(errors, custom_encoder={bytes: echo_bytes})
    return JSONResponse(status_code=422, content={"detail": finite_json(encoded)})
