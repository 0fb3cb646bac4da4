"""Wire messages → history rows: a pure function of each message, nothing else.

Because a row depends only on its message, replaying the topics rebuilds the same rows,
and an upsert of the same message twice is a no-op. When one run id has several results
(a run redone after a crash), the one latest in the topic wins, in a replay as live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from app.contracts import RunResult, SpanEvent, SpanKind

# Span attribute names the engine writes (app/observability/tracing.py, dots from `__`).
ATTR_MODEL = "model"
ATTR_PROMPT_TOKENS = "llm.prompt_tokens"
ATTR_COMPLETION_TOKENS = "llm.completion_tokens"
ATTR_COST = "cost_usd"
ATTR_ERROR_CATEGORY = "error.category"

RUN = "run"
PIPELINE = "pipeline"
STAGE = "stage"

#: Span kinds whose tokens and cost are a call's own (a run span sums its calls).
_PRICED_KINDS = frozenset({SpanKind.LLM_CALL.value, SpanKind.LLM_ATTEMPT.value})

K = TypeVar("K")


def run_values(result: RunResult) -> dict[str, Any]:
    """The `ferry_runs` row of a result."""
    ctx = result.pipeline
    if ctx is None:
        kind, root, parent, pipeline, stage = RUN, result.run_id, None, None, None
    elif ctx.root_run_id == result.run_id:
        # The pipeline's own result; its context names the stage that ended it, not a parent.
        kind, root, parent, pipeline, stage = PIPELINE, result.run_id, None, ctx.pipeline, None
    else:
        kind, root, parent, pipeline, stage = STAGE, ctx.root_run_id, ctx.parent_run_id, ctx.pipeline, ctx.stage
    usage, error = result.usage, result.error
    return {
        "run_id": result.run_id,
        "kind": kind,
        "agent": result.agent,
        "status": result.status.value,
        "tenant": result.tenant,
        "deployment": result.deployment,
        "trigger_source": result.trigger.source,
        "trigger_metadata": dict(result.trigger.metadata),
        "pipeline": pipeline,
        "stage": stage,
        "root_run_id": root,
        "parent_run_id": parent,
        # RunResult (schema 1) does not carry the request's created_at; the column waits for it.
        "queued_at": None,
        "started_at": result.started_at,
        "ended_at": result.ended_at,
        "duration_ms": result.duration_ms,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cost_usd": usage.cost_usd,
        "llm_calls": usage.llm_calls,
        "tool_calls": usage.tool_calls,
        "error_category": error.category.value if error else None,
        "error_message": error.message if error else None,
        "error_retryable": error.retryable if error else False,
        "partial": result.partial,
        "output": result.output,
    }


def span_values(event: SpanEvent) -> dict[str, Any]:
    """The `ferry_spans` row of a span event."""
    attributes = event.attributes
    priced = event.kind.value in _PRICED_KINDS
    return {
        "span_id": event.span_id,
        "trace_id": event.trace_id,
        "parent_span_id": event.parent_span_id,
        "run_id": event.run_id,
        "kind": event.kind.value,
        "name": event.name,
        "status": event.status.value,
        "start_time": event.start,
        "end_time": event.end,
        "duration_ms": event.duration_ms,
        "model": _text(attributes.get(ATTR_MODEL)),
        "prompt_tokens": _int(attributes.get(ATTR_PROMPT_TOKENS)) if priced else None,
        "completion_tokens": _int(attributes.get(ATTR_COMPLETION_TOKENS)) if priced else None,
        "cost_usd": _float(attributes.get(ATTR_COST)) if priced else None,
        "error_category": _text(attributes.get(ATTR_ERROR_CATEGORY)),
        "attributes": dict(attributes),
    }


def latest_by(rows: Iterable[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """One row per key, the last one seen: a batch upsert may not touch a row twice."""
    latest: dict[Any, dict[str, Any]] = {}
    for row in rows:
        latest.pop(row[key], None)  # re-insert so the order is that of the last occurrence
        latest[row[key]] = dict(row)
    return list(latest.values())


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:200]


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
