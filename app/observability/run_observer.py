"""`RunObserver`: what a worker tells its operators about each run besides its result.

The processor calls it at the four moments of a record's life it already handles:

    started(request, traces)   a run starts: its log fields set for its task; its spans
                               tapped for metrics on their way to `traces` (runs.traces)
    finished(result)           one log line (agent, run id, tenant, status, category,
                               duration, tokens, cost) and the run counters
    duplicate(...)             one log line: a redelivered record skipped
    dead_letter()              the DLQ counter (the processor logs the reason itself)

Without metrics (`ferry worker --no-metrics`) only the log lines remain; with neither
metrics nor traces the engine gets no span sink at all, so it builds no span events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from app.contracts import RunRequest, RunResult, RunStatus, SpanEvent
from app.contracts.money import format_usd
from app.observability.logs import EVENT_FIELDS, RunFields, set_run_fields
from app.observability.metrics import WorkerMetrics

SpanSink = Callable[[SpanEvent], None]

#: The logger of run events: one line per finished run and per skipped duplicate.
RUN_LOG = logging.getLogger("ferry.runs")

_QUIET_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.CANCELLED})
_MAX_ERROR_CHARS = 300


class RunObserver:
    def __init__(self, metrics: WorkerMetrics | None = None) -> None:
        self.metrics = metrics

    def started(self, request: RunRequest, traces: SpanSink | None) -> SpanSink | None:
        """A run starts in the calling task: lines logged in it from now on carry the run's
        fields (the lane runs each run in a task of its own, so they end with it). Returns
        the sink the engine should send spans to: `traces` behind the metrics' tap (None:
        no span wanted)."""
        fields = set_run_fields(request.run_id, request.agent, request.tenant)
        metrics = self.metrics
        if metrics is None:
            return _trace_id_tap(fields, traces) if traces is not None else None
        metrics.record_started(request.agent, request.created_at)
        agent = request.agent

        def tap(span: SpanEvent) -> None:
            if fields.trace_id is None:
                fields.trace_id = span.trace_id
            metrics.record_span(agent, span)
            if traces is not None:
                traces(span)

        return tap

    def finished(self, result: RunResult) -> None:
        """A result was produced (an executed run, a dropped one, a pipeline's own result)."""
        if self.metrics is not None:
            self.metrics.record_result(result)
        level = logging.INFO if result.status in _QUIET_STATUSES else logging.WARNING
        if RUN_LOG.isEnabledFor(level):
            _log_finished(level, result)

    def duplicate(self, request: RunRequest, where: str, reason: str) -> None:
        """A record whose run already has a result, or is already queued or running here."""
        if RUN_LOG.isEnabledFor(logging.INFO):
            RUN_LOG.info(
                "duplicate skipped: run_id=%s agent=%s tenant=%s record=%s reason=%s",
                request.run_id, request.agent, request.tenant, where, reason,
                extra={
                    "run_id": request.run_id,
                    "agent": request.agent,
                    "tenant": request.tenant,
                    EVENT_FIELDS: {"event": "duplicate_skipped", "record": where, "reason": reason},
                },
            )  # fmt: skip

    def dead_letter(self) -> None:
        if self.metrics is not None:
            self.metrics.record_dead_letter()


def _trace_id_tap(fields: RunFields, traces: SpanSink) -> SpanSink:
    def tap(span: SpanEvent) -> None:
        if fields.trace_id is None:
            fields.trace_id = span.trace_id
        traces(span)

    return tap


def _log_finished(level: int, result: RunResult) -> None:
    usage = result.usage
    category = result.error.category.value if result.error is not None else None
    cost = format_usd(usage.cost_usd)
    event: dict[str, Any] = {
        "event": "run_finished",
        "status": result.status.value,
        "category": category,
        "duration_ms": round(result.duration_ms, 1),
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "tokens": usage.total_tokens,
        "cost_usd": usage.cost_usd,
        "cost": cost,
    }
    if result.pipeline is not None:
        event["pipeline"] = result.pipeline.pipeline
        event["root_run_id"] = result.pipeline.root_run_id
    message = "run finished: run_id=%s agent=%s tenant=%s status=%s category=%s duration=%s tokens=%d cost=%s"
    args: list[Any] = [
        result.run_id, result.agent, result.tenant, result.status.value, category or "-",
        _duration(result.duration_ms), usage.total_tokens, cost,
    ]  # fmt: skip
    if result.error is not None:
        text = result.error.message[:_MAX_ERROR_CHARS]
        event["error"] = text
        message += " error: %s"
        args.append(text)
    RUN_LOG.log(
        level,
        message,
        *args,
        extra={"run_id": result.run_id, "agent": result.agent, "tenant": result.tenant, EVENT_FIELDS: event},
    )


def _duration(ms: float) -> str:
    return f"{ms:.0f}ms" if ms < 1000 else f"{ms / 1000:.2f}s"
