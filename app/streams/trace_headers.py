"""W3C trace context in Kafka record headers: read from a request, written on the next one.

    submitter ─ traceparent ─► routing ─ same ─► stage 0 run ─ its run span ─► stage 1 run ─► …

A request record may carry `traceparent` (and `tracestate`) headers; the run it starts
continues that trace. Routing a pipeline request to its first stage passes the headers
on unchanged; a stage that hands on to the next one writes its own run span as the
next request's parent. So a pipeline is one trace, its stages chained parent to child,
whatever worker ran each. A record without the headers (or with malformed ones) starts
a new trace at its run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from opentelemetry import trace

from app.contracts import SpanEvent, SpanKind
from app.contracts.trace_context import TRACEPARENT, TRACESTATE, TraceContext

Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes]
SpanSink = Callable[[SpanEvent], None]


def read_trace_context(headers: Headers | None) -> TraceContext | None:
    """The trace context of a record's headers (names are case-insensitive), or None."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        if key in (TRACEPARENT, TRACESTATE) and key not in found and value is not None:
            try:
                found[key] = value.decode("ascii")
            except (UnicodeDecodeError, AttributeError):
                continue
    return TraceContext.parse(found.get(TRACEPARENT), found.get(TRACESTATE))


def trace_headers(context: TraceContext | None) -> list[tuple[str, bytes]] | None:
    """The headers that carry `context` (None: no headers at all)."""
    if context is None:
        return None
    headers = [(TRACEPARENT, context.traceparent.encode("ascii"))]
    if context.tracestate:
        headers.append((TRACESTATE, context.tracestate.encode("ascii")))
    return headers


def current_trace_context() -> TraceContext | None:
    """The caller's current OpenTelemetry span as a trace context, when it has a valid one:
    a traced application that submits a run sees that run under its own span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    state = context.trace_state.to_header() if context.trace_state else None
    return TraceContext(
        format(context.trace_id, "032x"), format(context.span_id, "016x"), context.trace_flags.sampled, state or None
    )


class RunSpanCatcher:
    """An `on_span` sink that remembers the run span of `run_id` and passes every span on.

    A pipeline stage needs its own run span as the parent of the next stage's request; the
    engine hands that span out only as a `SpanEvent`, as it hands out every other."""

    def __init__(self, run_id: str, received: TraceContext | None, forward: SpanSink | None) -> None:
        self._run_id = run_id
        self._forward = forward
        self.context = received  # until the run span is seen: the context the run was given

    def __call__(self, event: SpanEvent) -> None:
        if event.kind is SpanKind.RUN and event.run_id == self._run_id:
            state = self.context.tracestate if self.context is not None else None
            self.context = TraceContext(event.trace_id, event.span_id, tracestate=state)
        if self._forward is not None:
            self._forward(event)
