"""Wire messages → history rows: a pure function of each message, nothing else.

Because a row depends only on its message, replaying the topics rebuilds the same rows,
and an upsert of the same message twice is a no-op. When one run id has several results
(a run redone after a crash), the one latest in the topic wins, in a replay as live.
Text loses its NUL characters (PostgreSQL's text cannot hold them; SQLite would keep
them, and both backends must hold the same history).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
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


#: The column order of `run_row`'s tuples (the `ferry_runs` columns; the key first).
RUN_COLUMNS = (
    "run_id", "kind", "agent", "status", "tenant", "deployment", "trigger_source", "trigger_metadata",
    "pipeline", "stage", "root_run_id", "parent_run_id", "queued_at", "started_at", "ended_at",
    "duration_ms", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "llm_calls",
    "tool_calls", "error_category", "error_message", "error_retryable", "partial", "output",
)  # fmt: skip
#: The column order of `span_row`'s tuples (the `ferry_spans` columns; the key first).
SPAN_COLUMNS = (
    "span_id", "trace_id", "parent_span_id", "run_id", "kind", "name", "status", "start_time",
    "end_time", "duration_ms", "model", "prompt_tokens", "completion_tokens", "cost_usd",
    "error_category", "attributes",
)  # fmt: skip

Row = tuple[Any, ...]


def run_row(result: RunResult) -> Row:
    """The `ferry_runs` row of a result, in `RUN_COLUMNS` order.

    A tuple rather than a dict: the projector builds one per run a worker finishes, and
    the store hands tuples to the driver as they are."""
    ctx = result.pipeline
    if ctx is None:
        # A run started by another run's trigger_agent names that run as its parent.
        triggered_by = result.trigger.metadata.get("parent_run_id") if result.trigger.source == "agent" else None
        parent = triggered_by if isinstance(triggered_by, str) else None
        kind, root, pipeline, stage = RUN, result.run_id, None, None
    elif ctx.root_run_id == result.run_id:
        # The pipeline's own result; its context names the stage that ended it, not a parent.
        kind, root, parent, pipeline, stage = PIPELINE, result.run_id, None, ctx.pipeline, None
    else:
        kind, root, parent, pipeline, stage = STAGE, ctx.root_run_id, ctx.parent_run_id, ctx.pipeline, ctx.stage
    usage, error, trigger = result.usage, result.error, result.trigger
    return (
        _clean(result.run_id),
        kind,
        _clean(result.agent),
        result.status.value,
        _clean(result.tenant),
        _clean(result.deployment),
        _clean(trigger.source),
        dict(trigger.metadata),
        _clean(pipeline),
        None if stage is None else _bounded(stage),
        _clean(root),
        _clean(parent),
        result.queued_at,  # None in results written before it was carried
        result.started_at,
        result.ended_at,
        result.duration_ms,
        _bounded(usage.prompt_tokens),
        _bounded(usage.completion_tokens),
        _bounded(usage.total_tokens),
        usage.cost_usd,
        _bounded(usage.llm_calls),
        _bounded(usage.tool_calls),
        error.category.value if error else None,
        _clean(error.message) if error else None,
        error.retryable if error else False,
        result.partial,
        result.output,
    )


def span_row(event: SpanEvent) -> Row:
    """The `ferry_spans` row of a span event, in `SPAN_COLUMNS` order."""
    attributes = event.attributes
    priced = event.kind.value in _PRICED_KINDS
    return (
        _clean(event.span_id),
        _clean(event.trace_id),
        _clean(event.parent_span_id),
        _clean(event.run_id),
        event.kind.value,
        _clean(event.name),
        event.status.value,
        event.start,
        event.end,
        event.duration_ms,
        _text(attributes.get(ATTR_MODEL)),
        _int(attributes.get(ATTR_PROMPT_TOKENS)) if priced else None,
        _int(attributes.get(ATTR_COMPLETION_TOKENS)) if priced else None,
        _float(attributes.get(ATTR_COST)) if priced else None,
        _text(attributes.get(ATTR_ERROR_CATEGORY)),
        dict(attributes),
    )


def run_values(result: RunResult) -> dict[str, Any]:
    """`run_row` by column name (for readers of one row, such as tests)."""
    return dict(zip(RUN_COLUMNS, run_row(result), strict=True))


def span_values(event: SpanEvent) -> dict[str, Any]:
    """`span_row` by column name."""
    return dict(zip(SPAN_COLUMNS, span_row(event), strict=True))


def latest_by_key(rows: Iterable[Row]) -> list[Row]:
    """One row per key (a row's first value), the last one seen: a batch upsert may not
    touch a row twice, and the latest result of a run is the one that counts."""
    latest: dict[Any, Row] = {}
    for row in rows:
        latest.pop(row[0], None)  # re-insert so the order is that of the last occurrence
        latest[row[0]] = row
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
