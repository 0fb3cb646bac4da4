"""Spans of a run through the OpenTelemetry API, delivered as `SpanEvent`s.

Each `Engine` owns an `EngineTracing`: a private `TracerProvider` (the global provider
is never touched, so embedding Ferry changes nobody's tracing) with one span processor
that turns every finished OTel span into a redacted `SpanEvent` and hands it to the
sink of the run it belongs to. The processor finds the sink by trace id and run id, so
concurrent runs never see each other's spans, even two runs of one trace.

A run starts a new trace, or continues the one its `TraceContext` names (the W3C
`traceparent` a submitter or the previous pipeline stage sent along): its run span is
then a child of that span, so every stage of a pipeline is one trace whatever process
ran it. Every span is recorded (the sampler is ALWAYS_ON, whatever the caller's sampled
flag or OTEL_TRACES_SAMPLER say): `runs.traces` and the history are Ferry's own record.
With OTEL_EXPORTER_OTLP_ENDPOINT set, the same spans also go to an OpenTelemetry
collector (`otel_export`). Without one nothing but the sink reads them, so they are
recorded without the SDK (`span_recorder`: the same events, a fraction of the CPU), which
is then not even imported (`otel_sdk`).

    run ─┬─ llm_call ─┬─ llm_attempt
         │            ├─ retry_wait
         │            └─ llm_attempt
         ├─ tool_call
         └─ output_validation

Span kinds are typed through `RunTracer.span(kind, name, ...)`; parents follow the
OTel context (contextvars), which asyncio copies into every task, so parallel tool
calls are children of the step that started them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags, TraceState

from app.contracts import SpanKind, Usage
from app.contracts.errors import ErrorCategory, FerryError, RunTimeoutError, ToolTimeoutError
from app.contracts.spans import SpanAttr
from app.contracts.trace_context import TraceContext
from app.observability.otel_export import KIND_ATTRIBUTE, RUN_ID_ATTRIBUTE, otlp_export
from app.observability.redaction import Redactor
from app.observability.span_recorder import RunRecorder, SpanSink

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from app.observability.otel_sdk import SinkProcessor

# Internal attributes: they route a span to its event and never reach the SpanEvent.
_KIND = KIND_ATTRIBUTE
_RUN_ID = RUN_ID_ATTRIBUTE


def usage_attributes(usage: Usage) -> dict[str, Any]:
    """The token and cost attributes of an llm_call or run span, named alike everywhere."""
    return {
        SpanAttr.PROMPT_TOKENS: usage.prompt_tokens,
        SpanAttr.COMPLETION_TOKENS: usage.completion_tokens,
        SpanAttr.TOTAL_TOKENS: usage.total_tokens,
        SpanAttr.COST_USD: usage.cost_usd,
    }


class SpanHandle:
    """The open span a block of engine code may annotate."""

    def __init__(self, span: trace.Span) -> None:
        self.otel = span

    def set(self, **attributes: Any) -> None:
        """Keyword names map to attribute names with `__` as the dot (`llm__step` is
        `llm.step`); `**{SpanAttr.X: value}` passes a name as it is."""
        for key, value in attributes.items():
            if value is not None:
                self.otel.set_attribute(key.replace("__", "."), _attr(value))

    def fail(self, error: FerryError | ErrorCategory, message: str | None = None) -> None:
        category = error.category if isinstance(error, FerryError) else error
        text = message if message is not None else (error.message if isinstance(error, FerryError) else "")
        self.otel.set_attribute(SpanAttr.ERROR_CATEGORY, category.value)
        if text:
            self.otel.set_attribute(SpanAttr.ERROR_MESSAGE, text[:1000])
        if isinstance(error, ToolTimeoutError | RunTimeoutError):
            # A reader (the CLI) can say which limit ran out without parsing the message.
            self.otel.set_attribute(SpanAttr.ERROR_TIMEOUT_SECONDS, error.timeout_seconds)
        self.otel.set_status(Status(StatusCode.ERROR, category.value))


def _attr(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return str(value)


class RunTracer:
    """Span factories for one run: every span carries its kind and the run id."""

    def __init__(self, tracer: trace.Tracer | RunRecorder, run_id: str) -> None:
        """`tracer`: the SDK's (spans exported) or the run's own recorder (not exported)."""
        self._tracer = tracer
        self.run_id = run_id

    def _open(self, kind: SpanKind, name: str) -> AbstractContextManager[trace.Span]:
        if isinstance(self._tracer, RunRecorder):
            return self._tracer.current_span(kind, name)
        return self._tracer.start_as_current_span(
            name,
            attributes={_KIND: kind.value, _RUN_ID: self.run_id},
            record_exception=False,
            set_status_on_exception=False,
        )

    @contextmanager
    def span(self, kind: SpanKind, name: str, **attributes: Any) -> Iterator[SpanHandle]:
        with self._open(kind, name) as span:
            handle = SpanHandle(span)
            handle.set(**attributes)
            try:
                yield handle
            except FerryError as exc:
                if span.is_recording() and SpanAttr.ERROR_CATEGORY not in (getattr(span, "attributes", None) or {}):
                    handle.fail(exc)
                raise
            except asyncio.CancelledError:
                if SpanAttr.ERROR_CATEGORY not in (getattr(span, "attributes", None) or {}):
                    handle.fail(ErrorCategory.CANCELLED, "cancelled")
                raise
            except Exception as exc:
                if SpanAttr.ERROR_CATEGORY not in (getattr(span, "attributes", None) or {}):
                    handle.fail(ErrorCategory.INTERNAL, f"{type(exc).__name__}: {exc}")
                raise


class EngineTracing:
    """One per engine: how its runs' spans are recorded, read once when built. With an OTLP
    export (the environment names a collector): a private TracerProvider, the sink registry
    of its runs and the export. Without: each run's `RunRecorder` (`sdk=True` forces the
    SDK path, to compare the two)."""

    def __init__(self, redactor: Redactor, *, sdk: bool = False) -> None:
        self.redactor = redactor
        self._export = otlp_export(redactor)
        self._provider: TracerProvider | None = None
        # OTEL_SDK_DISABLED switches the SDK off, and with it every span (docs/observability.md).
        if self._export is not None or sdk or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.sampling import ALWAYS_ON

            from app.observability.otel_sdk import SinkProcessor

            self._processor: SinkProcessor = SinkProcessor(redactor)
            self._provider = TracerProvider(
                sampler=ALWAYS_ON, resource=self._export.resource if self._export is not None else None
            )
            self._provider.add_span_processor(self._processor)
            if self._export is not None:
                self._provider.add_span_processor(self._export.processor)
            self._tracer = self._provider.get_tracer("ferry.engine")

    @property
    def exporting(self) -> bool:
        """Whether spans also go to an OTLP collector."""
        return self._export is not None

    @property
    def sdk(self) -> bool:
        """Whether spans are recorded by the OTel SDK (else by each run's `RunRecorder`)."""
        return self._provider is not None

    @contextmanager
    def run_span(
        self,
        run_id: str,
        name: str,
        sink: SpanSink | None,
        *,
        parent: TraceContext | None = None,
        **attributes: Any,
    ) -> Iterator[tuple[RunTracer, SpanHandle]]:
        """The span of a run, `sink` receiving its spans: under `parent` (a span of another
        process) when given, else the root of a fresh trace."""
        if self._provider is None:
            with self._recorded_run_span(run_id, name, sink, parent, attributes) as opened:
                yield opened
            return
        run_tracer = RunTracer(self._tracer, run_id)
        # Never the caller's current context: a run is a root unless told whose child it is.
        with self._tracer.start_as_current_span(
            name,
            context=_parent_context(parent),
            attributes={_KIND: SpanKind.RUN.value, _RUN_ID: run_id},
            record_exception=False,
            set_status_on_exception=False,
            end_on_exit=False,
        ) as span:
            trace_id = span.get_span_context().trace_id
            if sink is not None:
                self._processor.register(trace_id, run_id, sink)
            handle = SpanHandle(span)
            handle.set(**attributes)
            try:
                yield run_tracer, handle
            finally:
                span.end()  # end before unregistering, so the run span itself is delivered
                self._processor.unregister(trace_id, run_id)

    @contextmanager
    def _recorded_run_span(
        self, run_id: str, name: str, sink: SpanSink | None, parent: TraceContext | None, attributes: dict[str, Any]
    ) -> Iterator[tuple[RunTracer, SpanHandle]]:
        recorder = RunRecorder(run_id, sink, self.redactor)
        span = recorder.start_root(SpanKind.RUN, name, parent)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            handle = SpanHandle(span)
            handle.set(**attributes)
            try:
                yield RunTracer(recorder, run_id), handle
            finally:
                span.end()  # the run span is delivered before the run's sink is let go
                recorder.close()
        finally:
            otel_context.detach(token)

    def shutdown(self) -> None:
        """Flush and close: with an export, this waits for the last batch to be sent."""
        if self._provider is not None:
            self._provider.shutdown()

    async def aclose(self) -> None:
        """`shutdown` without holding the event loop while the last batch is exported."""
        if self._provider is None:
            return
        if self._export is None:
            self._provider.shutdown()
        else:
            await asyncio.to_thread(self._provider.shutdown)


def _parent_context(parent: TraceContext | None) -> Context:
    """An empty Context (a new trace), or one whose current span is the remote `parent`."""
    if parent is None:
        return Context()
    remote = SpanContext(
        trace_id=int(parent.trace_id, 16),
        span_id=int(parent.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if parent.sampled else TraceFlags.DEFAULT),
        trace_state=TraceState.from_header([parent.tracestate]) if parent.tracestate else None,
    )
    return trace.set_span_in_context(NonRecordingSpan(remote), Context())
