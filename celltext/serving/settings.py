"""Service settings, read from ``CELLTEXT_*`` environment variables.

Every field has an environment variable named ``CELLTEXT_`` + the field name in upper case
(``CELLTEXT_MODEL``, ``CELLTEXT_THRESHOLD``, ``CELLTEXT_MAX_BATCH``, ...). The admin token
(``CELLTEXT_ADMIN_TOKEN``) guards the version-management endpoints: when it is unset or
empty every admin call is refused. ``CELLTEXT_FORWARDED_ALLOW_IPS`` names the proxies whose
``X-Forwarded-For`` is believed; unset, nobody's is (``celltext serve`` passes it to uvicorn's
``forwarded_allow_ips``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field

from celltext.config import Config, ConfigError, require
from celltext.paths import DEFAULT_RELEASE

_ENV_PREFIX = "CELLTEXT_"


@dataclass
class ServingSettings(Config):
    """Configuration of ``celltext serve`` (and of :func:`celltext.serving.app.create_app`)."""

    model: str | None = None
    """Model reference: checkpoint dir, ``name@alias``, ``name/version``, ``retrieval``;
    ``None`` is the shipped default."""
    fallback: bool = True
    """Fall back to the phrase bank on low quality or on any failing stage."""
    threshold: float = 0.5
    """Confidence below which the generated answer is replaced by the fallback."""
    release: str = DEFAULT_RELEASE
    """Data release whose train split feeds the phrase bank."""
    max_question_chars: int = 1000
    """Longest accepted question (characters); longer is a 422."""
    max_batch: int = 64
    """Most questions (or embedding rows) in one batch request; more is a 422."""
    max_body_bytes: int = 1_000_000
    """Largest accepted request body; larger is a 413."""
    request_timeout_s: float = 10.0
    """Per-request time budget; past it the answer comes from the fallback, or a 504."""
    body_timeout_s: float = 10.0
    """Time allowed for reading a request body; a slower upload is cut off with a 408."""
    workers: int = 2
    """Threads that run the predictor (the event loop never runs torch itself)."""
    torch_threads: int = 1
    """torch intra-op threads per process."""
    micro_batch: int = 16
    """Most questions that concurrent requests share in one model batch; 1 disables batching."""
    batch_wait_ms: float = 2.0
    """How long a batch waits for more requests to join (milliseconds)."""
    max_queue: int = 256
    """Most questions waiting for a micro-batch; past it a request gets phrase-bank answers
    at once (``fallback_reason: "overloaded: ..."``), or a 503 with ``Retry-After``."""
    admin_token: str | None = field(default=None, repr=False)
    """Bearer token for promote/rollback; unset refuses every admin call."""
    registry_name: str | None = None
    """Registered model whose ``champion`` alias is watched for automatic updates."""
    update_interval_s: float = 0.0
    """Seconds between polls of the champion alias; 0 disables automatic updates."""
    feedback_db: str | None = None
    """SQLite file for feedback; default ``home_dir()/feedback.sqlite3``."""
    feedback_per_minute: int = 30
    """Most feedback posts per client address per minute; more is a 429."""
    feedback_max_rows: int = 100_000
    """Most rows the feedback database holds; past it new feedback is a 507."""
    feedback_max_chars: int = 4_000
    """Longest accepted answer or comment in a feedback post (characters); longer is a 422."""
    forwarded_allow_ips: str | None = None
    """Proxies trusted to set ``X-Forwarded-For`` and ``X-Forwarded-Proto``: comma-separated
    addresses or networks (``10.0.0.0/8``), ``*`` for any. Unset trusts none: the client is
    the connection's address, so a forged header cannot dodge the feedback rate limit."""
    warmup: bool = True
    """Answer one question at start-up so the first user request is not the slow one."""

    def validate(self) -> None:
        require(0.0 <= self.threshold <= 1.0, "threshold", "must be in 0..1")
        require(self.max_question_chars > 0, "max_question_chars", "must be > 0")
        require(self.max_batch > 0, "max_batch", "must be > 0")
        require(self.max_body_bytes > 0, "max_body_bytes", "must be > 0")
        require(self.request_timeout_s > 0, "request_timeout_s", "must be > 0")
        require(self.body_timeout_s > 0, "body_timeout_s", "must be > 0")
        require(self.workers > 0, "workers", "must be > 0")
        require(self.torch_threads > 0, "torch_threads", "must be > 0")
        require(self.micro_batch > 0, "micro_batch", "must be > 0")
        require(self.batch_wait_ms >= 0, "batch_wait_ms", "must be >= 0")
        require(self.max_queue > 0, "max_queue", "must be > 0")
        require(self.update_interval_s >= 0, "update_interval_s", "must be >= 0")
        require(self.feedback_per_minute > 0, "feedback_per_minute", "must be > 0")
        require(self.feedback_max_rows > 0, "feedback_max_rows", "must be > 0")
        require(self.feedback_max_chars > 0, "feedback_max_chars", "must be > 0")
        for item in self.trusted_proxies:
            require(_is_network(item), "forwarded_allow_ips", f"{item!r} is not an IP "
                    "address, a network or '*' (CELLTEXT_FORWARDED_ALLOW_IPS)")  # fmt: skip

    @property
    def trusted_proxies(self) -> list[str]:
        """The entries of :attr:`forwarded_allow_ips` (empty: trust no proxy)."""
        return [p.strip() for p in (self.forwarded_allow_ips or "").split(",") if p.strip()]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> ServingSettings:
        """Settings from ``CELLTEXT_<FIELD>`` variables, then ``overrides`` on top."""
        env = os.environ if environ is None else environ
        values: dict = {}
        for f in dataclasses.fields(cls):
            raw = env.get(_ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _parse(f.name, raw, type(getattr(cls(), f.name)), f.default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values)

    @property
    def admin_enabled(self) -> bool:
        """Whether admin endpoints can be used at all (a non-empty token is configured)."""
        return bool(self.admin_token)

    def public_dict(self) -> dict:
        """Settings without secrets (for logs and ``/health``)."""
        data = self.to_dict()
        data["admin_token"] = "set" if self.admin_enabled else None
        return data


def _is_network(item: str) -> bool:
    try:
        return item == "*" or bool(ipaddress.ip_network(item, strict=False))
    except ValueError:
        return False


def _parse(name: str, raw: str, default_type: type, default) -> object:
    """Convert an environment string to the type of the field's default."""
    env_name = _ENV_PREFIX + name.upper()
    if default is None:  # optional string fields
        return raw or None
    try:
        if default_type is bool:
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        if default_type is int:
            return int(raw)
        if default_type is float:
            return float(raw)
    except ValueError as exc:
        raise ConfigError(
            name, f"{env_name}={raw!r} is not a valid {default_type.__name__}"
        ) from exc
    return raw
