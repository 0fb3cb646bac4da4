"""Spans recorded as plain objects, when no OpenTelemetry exporter reads them.

Without an OTLP endpoint a span's only reader is Ferry's own sink (runs.traces, the
metrics tap, the history), and the OTel SDK's machinery around it (its `Span` with
locks and bounded attributes, the processor chain, a `ReadableSpan`) cost ~40 µs a
span on this machine, about a tenth of a one-call run's CPU in the worker. A
`RecordedSpan` keeps only what a `SpanEvent` needs, drawn as the SDK draws it: ids from
`random.getrandbits` (the SDK's `RandomIdGenerator`), the parent from the current OTel
context, times from `time.time_ns`, attributes, an error status.

It is an OTel API span and is made the current span of OTel's context while open, so
whatever reads the current span (the trace id of a run's log lines, the trace headers of
a request a tool sends, a nested run's parent) sees it as it would see an SDK span.

`tracing.EngineTracing` picks this recorder or the SDK (when spans are exported); both
hand the sink equal events (`span_event`, tests/unit/observability/test_span_recorder.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util import types

from app.contracts import SpanEvent, SpanKind, SpanStatus
from app.contracts.trace_context import TraceContext
from app.observability.redaction import Redactor

SpanSink = Callable[[SpanEvent], None]

INTERNAL_PREFIX = "ferry."  # attributes that route a span and never reach its SpanEvent
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)  # every span is recorded (the SDK path's sampler is ALWAYS_ON)


def span_event(
    *,
    run_id: str,
    trace_id: int,
    span_id: int,
    parent_span_id: int | None,
    kind: SpanKind,
    name: str,
    failed: bool,
    start_ns: int,
    end_ns: int,
    attributes: Mapping[str, Any],
    redactor: Redactor,
) -> SpanEvent:
    """The redacted event of a finished span: one builder for both paths, so they agree."""
    public = {
        k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items() if not k.startswith(INTERNAL_PREFIX)
    }
    return SpanEvent(
        run_id=run_id,
        trace_id=format(trace_id, "032x"),
        span_id=format(span_id, "016x"),
        parent_span_id=format(parent_span_id, "016x") if parent_span_id is not None else None,
        kind=kind,
        name=redactor.text(name),
        status=SpanStatus.ERROR if failed else SpanStatus.OK,
        start=datetime.fromtimestamp(start_ns / 1e9, UTC),
        end=datetime.fromtimestamp(end_ns / 1e9, UTC),
        duration_ms=(end_ns - start_ns) / 1e6,
        attributes=redactor.mapping(public),
    )


def _new_id(bits: int) -> int:
    found = random.getrandbits(bits)
    while found == 0:  # the invalid id
        found = random.getrandbits(bits)
    return found


class RecordedSpan(trace.Span):
    """One span of a run: what its `SpanEvent` is built from when it ends."""

    def __init__(
        self,
        recorder: RunRecorder,
        kind: SpanKind,
        name: str,
        trace_id: int,
        parent_span_id: int | None,
        trace_state: TraceState | None,
    ) -> None:
        self.recorder = recorder
        self.kind = kind
        self.name = name
        self.trace_id = trace_id
        self.span_id = _new_id(64)
        self.parent_span_id = parent_span_id
        self.trace_state = trace_state
        self.attributes: dict[str, Any] = {}
        self.failed = False
        self._final_status = False  # an OK status set explicitly is final, as in the SDK
        self.start_ns = time.time_ns()
        self.end_ns = 0

    def get_span_context(self) -> SpanContext:
        return SpanContext(self.trace_id, self.span_id, False, _SAMPLED, self.trace_state)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if not self.end_ns:
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_ns or self._final_status:
            return
        code = status.status_code if isinstance(status, Status) else status
        if code is StatusCode.OK:
            self.failed, self._final_status = False, True
        elif code is StatusCode.ERROR:
            self.failed = True

    def is_recording(self) -> bool:
        return not self.end_ns

    def update_name(self, name: str) -> None:
        if not self.end_ns:
            self.name = name

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:  # a SpanEvent has no events
        return None

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:  # errors are attributes (`SpanHandle.fail`), as on the SDK path
        return None

    def end(self, end_time: int | None = None) -> None:
        if self.end_ns:
            return
        self.end_ns = end_time if end_time is not None else time.time_ns()
        self.recorder.ended(self)


class RunRecorder:
    """The spans of one run, each delivered to the run's sink as it ends (none once the run
    has ended, as the SDK path drops spans of a run whose sink is unregistered)."""

    def __init__(self, run_id: str, sink: SpanSink | None, redactor: Redactor) -> None:
        self.run_id = run_id
        self._sink = sink
        self._redactor = redactor

    @contextmanager
    def current_span(self, kind: SpanKind, name: str) -> Iterator[RecordedSpan]:
        """A span under the current one, current itself inside the block, ended on leaving it."""
        span = self.start(kind, name, trace.get_current_span())
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield span
        finally:
            otel_context.detach(token)
            span.end()

    def start(self, kind: SpanKind, name: str, parent: trace.Span | None) -> RecordedSpan:
        """A span under `parent` (None or an invalid span: the root of a new trace)."""
        if isinstance(parent, RecordedSpan):
            return RecordedSpan(self, kind, name, parent.trace_id, parent.span_id, parent.trace_state)
        context = parent.get_span_context() if parent is not None else None
        if context is None or not context.is_valid:
            return RecordedSpan(self, kind, name, _new_id(128), None, None)
        return RecordedSpan(self, kind, name, context.trace_id, context.span_id, context.trace_state)

    def start_root(self, kind: SpanKind, name: str, parent: TraceContext | None) -> RecordedSpan:
        """The run's span: under `parent` (a span of another process) or a new trace."""
        if parent is None:
            return RecordedSpan(self, kind, name, _new_id(128), None, None)
        state = TraceState.from_header([parent.tracestate]) if parent.tracestate else None
        return RecordedSpan(self, kind, name, int(parent.trace_id, 16), int(parent.span_id, 16), state)

    def close(self) -> None:
        self._sink = None

    def ended(self, span: RecordedSpan) -> None:
        sink = self._sink
        if sink is None:
            return
        event = span_event(
            run_id=self.run_id,
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_span_id=span.parent_span_id,
            kind=span.kind,
            name=span.name,
            failed=span.failed,
            start_ns=span.start_ns,
            end_ns=span.end_ns,
            attributes=span.attributes,
            redactor=self._redactor,
        )
        try:
            sink(event)
        except Exception:  # a broken sink never breaks the run
            return
