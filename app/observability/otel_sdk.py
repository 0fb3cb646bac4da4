"""The OpenTelemetry SDK side of a run's spans, imported only when spans go through the SDK.

That is when an OTLP collector is configured (`otel_export`), when OTEL_SDK_DISABLED is
set, or when a caller asks for it (`EngineTracing(sdk=True)`). Otherwise each run's
`RunRecorder` (span_recorder.py) makes the same events with the API alone, and a worker
does not load the SDK at all.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind as OtelSpanKind
from opentelemetry.trace import Status, StatusCode

from app.contracts import SpanEvent, SpanKind
from app.observability.otel_export import KIND_ATTRIBUTE, RUN_ID_ATTRIBUTE, genai_attributes, span_kind
from app.observability.redaction import Redactor
from app.observability.span_recorder import SpanSink, span_event


class SinkProcessor(SpanProcessor):
    """Finished OTel span → SpanEvent → the sink registered for its trace."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._sinks: dict[tuple[int, str], SpanSink] = {}
        self._lock = threading.Lock()  # spans may end on tool threads

    def register(self, trace_id: int, run_id: str, sink: SpanSink) -> None:
        with self._lock:
            self._sinks[(trace_id, run_id)] = sink

    def unregister(self, trace_id: int, run_id: str) -> None:
        with self._lock:
            self._sinks.pop((trace_id, run_id), None)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        run_id = str((span.attributes or {}).get(RUN_ID_ATTRIBUTE, ""))
        with self._lock:
            sink = self._sinks.get((context.trace_id, run_id))
        if sink is None:
            return
        event = to_span_event(span, self._redactor)
        try:
            sink(event)
        except Exception:
            return

    def shutdown(self) -> None:
        with self._lock:
            self._sinks.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def to_span_event(span: ReadableSpan, redactor: Redactor) -> SpanEvent:
    attributes: Mapping[str, Any] = span.attributes or {}
    start_ns = span.start_time or 0
    context = span.context
    assert context is not None
    return span_event(
        run_id=str(attributes.get(RUN_ID_ATTRIBUTE, "")),
        trace_id=context.trace_id,
        span_id=context.span_id,
        parent_span_id=span.parent.span_id if span.parent else None,
        kind=SpanKind(str(attributes.get(KIND_ATTRIBUTE, SpanKind.RUN.value))),
        name=span.name,
        failed=span.status.status_code is StatusCode.ERROR,
        start_ns=start_ns,
        end_ns=span.end_time or start_ns,
        attributes=attributes,
        redactor=redactor,
    )


class FerryExporter(SpanExporter):
    """Redacts each span as `runs.traces` does, adds the GenAI names, hands the batch on."""

    def __init__(self, inner: SpanExporter, redactor: Redactor) -> None:
        self._inner = inner
        self._redactor = redactor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([exported_span(span, self._redactor) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def exported_span(span: ReadableSpan, redactor: Redactor) -> ReadableSpan:
    """A copy of `span` as it leaves the process: redacted, with GenAI attributes beside Ferry's."""
    attributes = redactor.mapping(dict(span.attributes or {}))
    kind = span_kind(attributes.get(KIND_ATTRIBUTE))
    attributes.update(genai_attributes(kind, attributes))
    status = span.status
    if status.description:
        status = Status(status.status_code, redactor.text(status.description))
    return ReadableSpan(
        name=redactor.text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=span.events,
        links=span.links,
        kind=OtelSpanKind.CLIENT if kind is SpanKind.LLM_ATTEMPT else span.kind,  # the call to the provider
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
