"""Prometheus metrics of the service (``GET /metrics``).

Each app gets its own ``CollectorRegistry`` (several apps in one test process must not
collide). Under several worker processes that share a port (``uvicorn --workers``), set
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates all workers; see ``deploy/README.md``.

Names (all prefixed ``celltext_``):

- ``requests_total{endpoint,method,status}`` and ``request_latency_seconds{endpoint}``;
- ``answers_total{fallback}`` (the fallback rate is ``fallback="true"`` over all) and
  ``fallbacks_total{reason}`` (reason class: ``low_confidence``, ``core_error``, ...);
- ``answer_confidence``, ``answer_similarity``, ``answer_coherence`` histograms: quality of
  every generated answer (drift shows as a moving mean: ``_sum / _count``);
- ``model_info{name,version,core,decoder,teacher}`` (1 for the model being served),
  ``model_swaps_total``, ``inflight_requests``, ``timeouts_total``, ``feedback_total{rating}``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_UNIT_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def reason_class(reason: str | None) -> str:
    """The label value for a fallback reason: the part before the first colon."""
    return (reason or "none").split(":", 1)[0].strip() or "unknown"


class ServiceMetrics:
    """All metrics of one app, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "celltext_requests", "HTTP requests.", ["endpoint", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "celltext_request_latency_seconds", "HTTP request latency.", ["endpoint"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.answers = Counter(
            "celltext_answers", "Answers given, by whether the fallback was used.", ["fallback"],
            registry=r,
        )  # fmt: skip
        self.fallbacks = Counter(
            "celltext_fallbacks", "Fallback answers by reason class.", ["reason"], registry=r
        )
        self.confidence = Histogram(
            "celltext_answer_confidence", "Confidence of generated answers (0..1).",
            buckets=_UNIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.similarity = Histogram(
            "celltext_answer_similarity",
            "Teacher cosine between a generated answer and the predicted embedding.",
            buckets=_UNIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.coherence = Histogram(
            "celltext_answer_coherence", "Coherence of generated answers (0..1).",
            buckets=_UNIT_BUCKETS, registry=r,
        )  # fmt: skip
        self.model_info = Gauge(
            "celltext_model_info", "The model being served (value 1).",
            ["name", "version", "core", "decoder", "teacher"], registry=r,
        )  # fmt: skip
        self.swaps = Counter("celltext_model_swaps", "Automatic model swaps.", registry=r)
        self.inflight = Gauge("celltext_inflight_requests", "Requests in progress.", registry=r)
        self.timeouts = Counter(
            "celltext_timeouts", "Requests that ran past the per-request timeout.", registry=r
        )
        self.feedback = Counter("celltext_feedback", "Feedback received.", ["rating"], registry=r)

    def observe_answers(self, answers: Iterable) -> None:
        """Count answers and record the quality of every generated one."""
        for a in answers:
            self.answers.labels(fallback=str(bool(a.fallback)).lower()).inc()
            if a.fallback:
                self.fallbacks.labels(reason=reason_class(a.fallback_reason)).inc()
            if a.generated is not None:
                if a.similarity is not None:
                    self.similarity.observe(max(0.0, a.similarity))
                if a.coherence is not None:
                    self.coherence.observe(a.coherence)
                if a.model_confidence is not None:
                    self.confidence.observe(a.model_confidence)

    def set_model(self, info) -> None:
        """Show ``info`` (an :class:`~celltext.inference.records.ModelInfo`) as served."""
        self.model_info.clear()
        self.model_info.labels(
            name=info.name,
            version=info.version,
            core=info.core or "",
            decoder=info.decoder or "",
            teacher=info.teacher_id,
        ).set(1)

    def render(self) -> tuple[bytes, str]:
        """Exposition text and its content type (all workers under multiprocess mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
