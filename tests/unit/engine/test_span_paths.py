"""Spans recorded without the OTel SDK (no exporter configured) are the SDK path's spans.

Only ids and times differ between the two paths; the tree, kinds, names, statuses and
attributes of a run are the same, and so is what OTel's current span says inside a span.
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any

import pytest

from app.contracts import RunRequest, SpanEvent, SpanKind
from app.contracts.errors import LLMUnavailableError, RateLimitError
from app.contracts.trace_context import TraceContext
from app.engine import FakeClock
from app.engine.testing import Reply, ScriptedLLM, tool_call
from app.observability.redaction import Redactor
from app.observability.tracing import EngineTracing
from app.streams.trace_headers import current_trace_context

TOOLS = {
    "t": '''
        def add(a: int, b: int) -> int:
            """Add."""
            return a + b

        def fail(why: str) -> str:
            """Fail."""
            raise ValueError("no: " + why)
    '''
}
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def normalized(events: list[SpanEvent]) -> list[dict[str, Any]]:
    """The events without their ids and times: ids become the position of the span they name."""
    position = {e.span_id: i for i, e in enumerate(events)}
    assert len(position) == len(events), "span ids are unique"
    assert len({e.trace_id for e in events}) == 1
    out = []
    for event in events:
        data = event.model_dump(mode="json", exclude={"trace_id", "span_id", "start", "end", "duration_ms"})
        parent = event.parent_span_id
        data["parent_span_id"] = position.get(parent, parent) if parent is not None else None
        out.append(data)
    return out


async def run_once(make_project, engine_for, monkeypatch, *, sdk: bool) -> tuple[EngineTracing, list[SpanEvent]]:
    monkeypatch.setenv("FERRY_TEST_SERVICE_TOKEN", "tok-9f8e7d6c5b4a")
    with monkeypatch.context() as patched:
        patched.setattr("app.engine.engine.EngineTracing", functools.partial(EngineTracing, sdk=sdk))
        project = make_project(
            [{"name": "a", "tools": ["t.add", "t.fail"], "retry_options": {"attempts": 3, "initial_delay": 1}}],
            tools=TOOLS,
        )
        clock = FakeClock()
        llm = ScriptedLLM(
            [
                LLMUnavailableError("503 for token tok-9f8e7d6c5b4a"),
                RateLimitError("slow down"),
                Reply(
                    tool_calls=[tool_call("add", {"a": 1, "b": 2}), tool_call("fail", {"why": "api_key=qwerty12345"})]
                ),
                "3",
            ],
            clock=clock,
            latency=0.5,
        )
        engine = engine_for(project, llm, clock=clock)
    events: list[SpanEvent] = []
    request = RunRequest.new("a", "1+2", run_id="run-same")
    result = await engine.run(request, on_span=events.append, trace_context=TraceContext(TRACE, SPAN, tracestate="v=1"))
    assert result.status.value == "completed"
    return engine._tracing, events


async def test_both_paths_give_equal_span_events_for_one_run(make_project, engine_for, monkeypatch) -> None:
    recorded_tracing, recorded = await run_once(make_project, engine_for, monkeypatch, sdk=False)
    sdk_tracing, by_sdk = await run_once(make_project, engine_for, monkeypatch, sdk=True)
    assert not recorded_tracing.sdk and sdk_tracing.sdk  # two different paths were compared
    assert normalized(recorded) == normalized(by_sdk)
    kinds = [e.kind for e in recorded]
    assert kinds.count(SpanKind.LLM_ATTEMPT) == 4 and kinds.count(SpanKind.RETRY_WAIT) == 2
    assert kinds.count(SpanKind.TOOL_CALL) == 2 and kinds[-1] is SpanKind.RUN
    assert {e.trace_id for e in recorded} == {e.trace_id for e in by_sdk} == {TRACE}
    assert recorded[-1].parent_span_id == by_sdk[-1].parent_span_id == SPAN
    assert "qwerty12345" not in str(normalized(recorded)) and "tok-9f8e7d6c5b4a" not in str(normalized(recorded))
    for event in recorded:  # times are real: each span ends after it starts, within its parent
        assert event.end >= event.start and event.duration_ms >= 0


@pytest.mark.parametrize("sdk", [False, True])
def test_the_open_span_is_otels_current_span(sdk: bool) -> None:
    """What a tool sending a request (trace headers) or a log line (trace id) reads."""
    tracing = EngineTracing(Redactor(), sdk=sdk)
    assert tracing.sdk is sdk
    events: list[SpanEvent] = []
    seen: list[TraceContext | None] = []
    with tracing.run_span("r", "run a", events.append, parent=TraceContext(TRACE, SPAN, tracestate="v=1")) as (
        tracer,
        _,
    ):
        seen.append(current_trace_context())
        with tracer.span(SpanKind.TOOL_CALL, "tool t") as span:
            seen.append(current_trace_context())
            span.set(tool="t", count=2, ok=True, names=("x", "y"), skipped=None, ratio=0.5)
        with tracer.span(SpanKind.TOOL_CALL, "tool u") as span:
            span.fail(RateLimitError("slow"))
    assert current_trace_context() is None
    tool, failed, run = events
    assert seen == [
        TraceContext(TRACE, run.span_id, True, "v=1"),
        TraceContext(TRACE, tool.span_id, True, "v=1"),
    ]
    assert tool.parent_span_id == run.span_id and run.parent_span_id == SPAN
    assert tool.attributes == {"tool": "t", "count": 2, "ok": True, "names": ["x", "y"], "ratio": 0.5}
    assert failed.status.value == "error" and failed.attributes["error.category"] == "rate_limit"


@pytest.mark.parametrize("sdk", [False, True])
def test_a_span_ending_after_its_run_is_not_delivered(sdk: bool) -> None:
    tracing = EngineTracing(Redactor(), sdk=sdk)
    events: list[SpanEvent] = []

    def run_then_end_late() -> None:  # in a context of its own: the late span's exit leaves it dirty
        with tracing.run_span("r", "run a", events.append) as (tracer, _):
            late = tracer.span(SpanKind.TOOL_CALL, "tool late")
            late.__enter__()
        late.__exit__(None, None, None)

    contextvars.copy_context().run(run_then_end_late)
    assert [e.name for e in events] == ["run a"]
    assert current_trace_context() is None


def test_otel_sdk_disabled_still_switches_every_span_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/observability.md: OTEL_SDK_DISABLED=true stops Ferry's spans too."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    events: list[SpanEvent] = []
    with (
        EngineTracing(Redactor()).run_span("r", "run a", events.append) as (tracer, _),
        tracer.span(SpanKind.TOOL_CALL, "tool t"),
    ):
        pass
    assert events == []
