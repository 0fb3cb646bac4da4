"""Spans as data without any LLM: tree, ids, error categories, redaction, per-run sinks."""

from __future__ import annotations

import pytest

from app.contracts import SpanEvent, SpanKind, SpanStatus
from app.contracts.errors import RateLimitError
from app.observability.redaction import Redactor
from app.observability.tracing import EngineTracing


def test_spans_nest_and_carry_error_categories() -> None:
    tracing = EngineTracing(Redactor(["hunter2-secret"]))
    events: list[SpanEvent] = []
    with (
        tracing.run_span("run-1", "run a", events.append, agent="a") as (tracer, _),
        tracer.span(SpanKind.LLM_CALL, "llm m", model="m"),
        pytest.raises(RateLimitError),
        tracer.span(SpanKind.LLM_ATTEMPT, "attempt m", api_key="hunter2-secret"),
    ):
        raise RateLimitError("slow down, key hunter2-secret")
    attempt, call, run = events
    assert [e.kind for e in events] == [SpanKind.LLM_ATTEMPT, SpanKind.LLM_CALL, SpanKind.RUN]
    assert attempt.parent_span_id == call.span_id and call.parent_span_id == run.span_id
    assert run.parent_span_id is None
    assert attempt.status is SpanStatus.ERROR and attempt.attributes["error.category"] == "rate_limit"
    assert "hunter2" not in attempt.model_dump_json()
    assert call.status is SpanStatus.OK and {e.run_id for e in events} == {"run-1"}


def test_each_run_is_its_own_trace_and_sink() -> None:
    tracing = EngineTracing(Redactor())
    first: list[SpanEvent] = []
    second: list[SpanEvent] = []
    with tracing.run_span("r1", "run", first.append) as (t1, _):
        with (
            tracing.run_span("r2", "run", second.append) as (t2, _),  # a root even when nested
            t2.span(SpanKind.TOOL_CALL, "tool x"),
        ):
            pass
        with t1.span(SpanKind.TOOL_CALL, "tool y"):
            pass
    assert [e.name for e in first] == ["tool y", "run"] and [e.name for e in second] == ["tool x", "run"]
    assert first[0].trace_id != second[0].trace_id
    assert second[-1].parent_span_id is None


def test_a_broken_sink_does_not_break_the_run() -> None:
    delivered: list[str] = []

    def sink(event: SpanEvent) -> None:
        delivered.append(event.name)
        raise RuntimeError("sink down")

    tracing = EngineTracing(Redactor())
    with tracing.run_span("r", "run", sink) as (tracer, _):
        with tracer.span(SpanKind.TOOL_CALL, "tool"):
            pass
        after = "the run went on"
    assert after == "the run went on" and delivered == ["tool", "run"]
