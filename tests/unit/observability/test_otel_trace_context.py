"""W3C trace context: parsed from record headers, continued by a run's spans, handed on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from opentelemetry.sdk.trace import TracerProvider

from app.contracts import RunRequest, SpanEvent, SpanKind
from app.contracts.trace_context import TraceContext
from app.engine import Engine, EngineSettings
from app.engine.testing import FunctionLLM
from app.observability.redaction import Redactor
from app.observability.tracing import EngineTracing
from app.project import load_project
from app.streams.trace_headers import RunSpanCatcher, current_trace_context, read_trace_context, trace_headers

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
PARENT = f"00-{TRACE}-{SPAN}-01"


def test_a_traceparent_parses_and_prints_back() -> None:
    context = TraceContext.parse(PARENT, "congo=t61rcWkgMzE")
    assert context == TraceContext(TRACE, SPAN, True, "congo=t61rcWkgMzE")
    assert context.traceparent == PARENT
    unsampled = TraceContext.parse(f"00-{TRACE}-{SPAN}-00")
    assert unsampled is not None and not unsampled.sampled and unsampled.traceparent.endswith("-00")
    # A later version may append fields; a version 00 reader keeps the four it knows.
    assert TraceContext.parse(f"01-{TRACE}-{SPAN}-01-later") == TraceContext(TRACE, SPAN)
    assert context.child("b7ad6b7169203331") == TraceContext(TRACE, "b7ad6b7169203331", True, "congo=t61rcWkgMzE")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE}-{SPAN}",  # no flags
        f"00-{TRACE.upper()}-{SPAN}-01",  # W3C: lowercase hex only
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE}-{SPAN}-01",  # forbidden version
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE[:-1]}-{SPAN}-01",
    ],
)
def test_a_malformed_traceparent_is_ignored(header: str | None) -> None:
    assert TraceContext.parse(header) is None


def test_headers_carry_the_context_both_ways() -> None:
    context = TraceContext(TRACE, SPAN, tracestate="vendor=1")
    headers = trace_headers(context)
    assert headers == [("traceparent", PARENT.encode()), ("tracestate", b"vendor=1")]
    assert read_trace_context(headers) == context
    assert read_trace_context({"TraceParent": PARENT.encode()}) == TraceContext(TRACE, SPAN)  # names: any case
    assert trace_headers(None) is None and read_trace_context(None) is None and read_trace_context([]) is None
    assert read_trace_context([("traceparent", b"\xff\xfe")]) is None
    assert read_trace_context([("traceparent", b"nonsense"), ("other", b"x")]) is None
    assert read_trace_context([("tracestate", b"a=1")]) is None  # state without a parent: nothing to continue
    too_long = "a=" + "x" * 600
    assert read_trace_context([("traceparent", PARENT.encode()), ("tracestate", too_long.encode())]) == TraceContext(
        TRACE, SPAN
    )


def test_a_run_span_continues_the_given_trace() -> None:
    tracing = EngineTracing(Redactor())
    events: list[SpanEvent] = []
    with (
        tracing.run_span("r", "run a", events.append, parent=TraceContext(TRACE, SPAN)) as (tracer, _),
        tracer.span(SpanKind.TOOL_CALL, "tool t"),
    ):
        pass
    tool, run = events
    assert {tool.trace_id, run.trace_id} == {TRACE}
    assert run.parent_span_id == SPAN and tool.parent_span_id == run.span_id


def test_an_unsampled_parent_does_not_switch_ferrys_own_trace_off() -> None:
    tracing = EngineTracing(Redactor())
    events: list[SpanEvent] = []
    with tracing.run_span("r", "run a", events.append, parent=TraceContext(TRACE, SPAN, sampled=False)):
        pass
    assert [(e.kind, e.trace_id, e.parent_span_id) for e in events] == [(SpanKind.RUN, TRACE, SPAN)]


def test_runs_of_one_trace_each_get_only_their_own_spans() -> None:
    """Two requests sent under one caller span run at once in one engine: same trace id."""
    tracing = EngineTracing(Redactor())
    first: list[SpanEvent] = []
    second: list[SpanEvent] = []
    parent = TraceContext(TRACE, SPAN)
    with tracing.run_span("r1", "run a", first.append, parent=parent) as (t1, _):
        with tracing.run_span("r2", "run a", second.append, parent=parent) as (t2, _), t2.span(SpanKind.TOOL_CALL, "x"):
            pass
        with t1.span(SpanKind.TOOL_CALL, "y"):
            pass
    assert [e.name for e in first] == ["y", "run a"] and [e.name for e in second] == ["x", "run a"]
    assert {e.run_id for e in first} == {"r1"} and {e.run_id for e in second} == {"r2"}


async def test_engine_run_joins_the_callers_trace(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    agent = {"version": "1.0", "name": "a", "description": "d", "model": "openai/m", "system_prompt": "s"}
    (tmp_path / "agents" / "a.yaml").write_text(yaml.safe_dump(agent))
    engine = Engine(load_project(tmp_path), settings=EngineSettings(), llm=FunctionLLM(lambda request: "ok"))
    try:
        joined: list[SpanEvent] = []
        fresh: list[SpanEvent] = []
        await engine.run(RunRequest.new("a", "x"), on_span=joined.append, trace_context=TraceContext(TRACE, SPAN))
        await engine.run(RunRequest.new("a", "x"), on_span=fresh.append)
    finally:
        await engine.aclose()
    assert {e.trace_id for e in joined} == {TRACE} and len(joined) >= 3
    assert next(e for e in joined if e.kind is SpanKind.RUN).parent_span_id == SPAN
    run = next(e for e in fresh if e.kind is SpanKind.RUN)
    assert run.trace_id != TRACE and run.parent_span_id is None


def test_a_caller_span_is_the_default_context_of_a_submit() -> None:
    provider = TracerProvider()
    assert current_trace_context() is None
    with provider.get_tracer("app").start_as_current_span("handle order") as span:
        context = span.get_span_context()
        assert current_trace_context() == TraceContext(
            format(context.trace_id, "032x"), format(context.span_id, "016x")
        )
    provider.shutdown()


def test_the_catcher_keeps_the_run_span_and_forwards_every_span() -> None:
    tracing = EngineTracing(Redactor())
    forwarded: list[SpanEvent] = []
    catcher = RunSpanCatcher("r", TraceContext(TRACE, SPAN, tracestate="v=1"), forwarded.append)
    with (
        tracing.run_span("r", "run a", catcher, parent=catcher.context) as (tracer, _),
        tracer.span(SpanKind.TOOL_CALL, "t"),
    ):
        pass
    run = forwarded[-1]
    assert [e.kind for e in forwarded] == [SpanKind.TOOL_CALL, SpanKind.RUN]
    assert catcher.context == TraceContext(TRACE, run.span_id, tracestate="v=1")
    silent = RunSpanCatcher("r", None, None)  # traces off: it still learns the run span
    with tracing.run_span("r", "run a", silent):
        pass
    assert silent.context is not None and silent.context.trace_id != TRACE


async def test_a_sink_keyed_by_run_survives_concurrent_runs() -> None:
    tracing = EngineTracing(Redactor())
    seen: dict[str, list[SpanEvent]] = {"a": [], "b": []}

    async def run(run_id: str) -> None:
        with tracing.run_span(run_id, "run", seen[run_id].append, parent=TraceContext(TRACE, SPAN)) as (tracer, _):
            for _step in range(3):
                with tracer.span(SpanKind.TOOL_CALL, run_id):
                    await asyncio.sleep(0)

    await asyncio.gather(run("a"), run("b"))
    assert [e.name for e in seen["a"]] == ["a", "a", "a", "run"] and [e.name for e in seen["b"]] == [
        "b",
        "b",
        "b",
        "run",
    ]
