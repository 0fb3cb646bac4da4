"""Span attribute names are on the wire (`runs.traces`, the history store): pinned, and used by tracing."""

from __future__ import annotations

import pytest

from app.contracts import SpanEvent, SpanKind, Usage
from app.contracts.errors import ToolTimeoutError
from app.contracts.spans import SpanAttr
from app.observability.redaction import Redactor
from app.observability.tracing import EngineTracing, usage_attributes

WIRE_NAMES = {
    "ERROR_CATEGORY": "error.category",
    "ERROR_MESSAGE": "error.message",
    "ERROR_TIMEOUT_SECONDS": "error.timeout_seconds",
    "AGENT": "agent",
    "TENANT": "tenant",
    "STATUS": "status",
    "LLM_CALLS": "llm_calls",
    "TOOL_CALLS": "tool_calls",
    "LLM_RETRIES": "llm_retries",
    "PROMPT_TOKENS": "llm.prompt_tokens",
    "COMPLETION_TOKENS": "llm.completion_tokens",
    "TOTAL_TOKENS": "llm.total_tokens",
    "COST_USD": "cost_usd",
    "MODEL": "model",
    "LLM_STEP": "llm.step",
    "ESTIMATED_PROMPT_TOKENS": "llm.estimated_prompt_tokens",
    "FALLBACK_MODEL": "fallback_model",
    "FALLBACK_REASON": "fallback_reason",
    "ATTEMPT": "attempt",
    "ATTEMPTS": "llm.attempts",
    "ATTEMPTS_ALLOWED": "llm.attempts_allowed",
    "FALLBACK_TRIED": "fallback.tried",
    "FALLBACK_SKIPPED": "fallback.skipped",
    "GIVE_UP": "llm.give_up",
    "GIVE_UP_WAIT_SECONDS": "llm.give_up.wait_seconds",
    "GIVE_UP_REMAINING_SECONDS": "llm.give_up.remaining_seconds",
    "WAIT_SECONDS": "wait_seconds",
    "AFTER_ATTEMPT": "after_attempt",
    "REASON": "reason",
    "RETRY_AFTER_SECONDS": "retry_after_seconds",
    "TOOL": "tool",
    "TOOL_CALL_ID": "tool.call_id",
    "TOOL_RESULT_CHARS": "tool.result_chars",
    "TOOL_ARGUMENTS": "tool.arguments",
    "VALID": "valid",
    "REASK": "reask",
    "LAST_ANSWER": "output.last_answer",
    "LAST_ANSWER_CHARS": "output.last_answer_chars",
    "STAGE": "stage",
}


def test_every_name_keeps_its_wire_value() -> None:
    declared = {name: value for name, value in vars(SpanAttr).items() if name.isupper()}
    assert declared == WIRE_NAMES


def test_usage_and_failures_are_written_under_those_names() -> None:
    tracing = EngineTracing(Redactor())
    events: list[SpanEvent] = []
    usage = Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7, cost_usd=0.25)
    with (
        tracing.run_span("r", "run a", events.append, **usage_attributes(usage)) as (tracer, _),
        pytest.raises(ToolTimeoutError),
        tracer.span(SpanKind.TOOL_CALL, "tool nap", tool="nap"),
    ):
        raise ToolTimeoutError("nap", 2)
    tool, run = events
    assert tool.attributes == {
        SpanAttr.TOOL: "nap",
        SpanAttr.ERROR_CATEGORY: "tool_timeout",
        SpanAttr.ERROR_MESSAGE: "tool 'nap' did not finish within 2s",
        SpanAttr.ERROR_TIMEOUT_SECONDS: 2,
    }
    assert run.attributes == {
        SpanAttr.PROMPT_TOKENS: 3,
        SpanAttr.COMPLETION_TOKENS: 4,
        SpanAttr.TOTAL_TOKENS: 7,
        SpanAttr.COST_USD: 0.25,
    }
