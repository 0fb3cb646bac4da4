"""Wire messages → history rows: a pure function of each message, nothing else.

Because a row depends only on its message, replaying the topics rebuilds the same rows,
and an upsert of the same message twice is a no-op. When one run id has several results
(a run redone after a crash), the one latest in the topic wins, in a replay as live.
Text loses its NUL characters (PostgreSQL's text cannot hold them; SQLite would keep
them, and both backends must hold the same history).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, overload

from app.contracts import RunResult, SpanEvent, SpanKind
from app.contracts.spans import SpanAttr

# Span attribute names the engine writes (the wire names, app/contracts/spans.py).
ATTR_MODEL = SpanAttr.MODEL
ATTR_PROMPT_TOKENS = SpanAttr.PROMPT_TOKENS
ATTR_COMPLETION_TOKENS = SpanAttr.COMPLETION_TOKENS
ATTR_COST = SpanAttr.COST_USD
ATTR_ERROR_CATEGORY = SpanAttr.ERROR_CATEGORY

RUN = "run"
PIPELINE = "pipeline"
STAGE = "stage"

#: Span kinds whose tokens and cost are a call's own (a run span sums its calls).
_PRICED_KINDS = frozenset({SpanKind.LLM_CALL.value, SpanKind.LLM_ATTEMPT.value})

_INT64_MAX = 2**63 - 1


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
        "run_id": _clean(result.run_id),
        "kind": kind,
        "agent": _clean(result.agent),
        "status": result.status.value,
        "tenant": _clean(result.tenant),
        "deployment": _clean(result.deployment),
        "trigger_source": _clean(result.trigger.source),
        "trigger_metadata": dict(result.trigger.metadata),
        "pipeline": _clean(pipeline),
        "stage": None if stage is None else _bounded(stage),
        "root_run_id": _clean(root),
        "parent_run_id": _clean(parent),
        # RunResult (schema 1) does not carry the request's created_at; the column waits for it.
        "queued_at": None,
        "started_at": result.started_at,
        "ended_at": result.ended_at,
        "duration_ms": result.duration_ms,
        "prompt_tokens": _bounded(usage.prompt_tokens),
        "completion_tokens": _bounded(usage.completion_tokens),
        "total_tokens": _bounded(usage.total_tokens),
        "cost_usd": usage.cost_usd,
        "llm_calls": _bounded(usage.llm_calls),
        "tool_calls": _bounded(usage.tool_calls),
        "error_category": error.category.value if error else None,
        "error_message": _clean(error.message) if error else None,
        "error_retryable": error.retryable if error else False,
        "partial": result.partial,
        "output": result.output,
    }


def span_values(event: SpanEvent) -> dict[str, Any]:
    """The `ferry_spans` row of a span event."""
    attributes = event.attributes
    priced = event.kind.value in _PRICED_KINDS
    return {
        "span_id": _clean(event.span_id),
        "trace_id": _clean(event.trace_id),
        "parent_span_id": _clean(event.parent_span_id),
        "run_id": _clean(event.run_id),
        "kind": event.kind.value,
        "name": _clean(event.name),
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


@overload
def _clean(text: str) -> str: ...
@overload
def _clean(text: None) -> None: ...
@overload
def _clean(text: str | None) -> str | None: ...
def _clean(text: str | None) -> str | None:
    return text.replace("\x00", "") if text is not None and "\x00" in text else text


def _text(value: Any) -> str | None:
    return None if value is None else _clean(str(value))


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return _bounded(int(value))


def _bounded(value: int) -> int:
    """Within a 64-bit column: a producer's absurd count must not make the batch unwritable."""
    return max(-_INT64_MAX, min(_INT64_MAX, value))


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
