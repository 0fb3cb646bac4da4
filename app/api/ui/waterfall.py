"""A run's trace laid out on one time axis: one row per step, a bar from its start to its end.

    run ───────────────────────────────────────────────
      llm gpt-4o-mini  2 of 3 attempts   ──────────────────────────
        attempt 1  ✗ rate_limit          ──
        wait 0.30 s after attempt 1         ─────
        attempt 2                                 ───────────────
      tool lookup(id=7)                                            ─────

Bars are placed in percent of the whole trace (a pipeline's stages share their root's
axis), so the page needs no script to draw them. The failing step is the failed step
that ended last, not counting runs and stages (on a tie, the outer one): an LLM call
that gave up rather than its last attempt, whose attempts and waits hang under it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.contracts import SpanKind
from app.contracts.spans import SpanAttr
from app.observability.history.records import RunRecord, SpanRecord
from app.observability.history.trace_tree import RunTrace, SpanNode

_ARGUMENT_CHARS = 120
_MESSAGE_CHARS = 300


@dataclass
class Step:
    span_id: str
    depth: int
    kind: str
    label: str
    status: str
    category: str | None
    message: str | None
    start_ms: float
    duration_ms: float
    left_pct: float = 0.0
    width_pct: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    note: str = ""
    failing: bool = False
    run_id: str = ""


@dataclass
class Waterfall:
    steps: list[Step] = field(default_factory=list)
    total_ms: float = 0.0

    @property
    def failing(self) -> Step | None:
        return next((step for step in self.steps if step.failing), None)


def waterfall(trace: RunTrace) -> Waterfall:
    rows: list[tuple[int, SpanRecord, SpanNode | None]] = []
    if trace.stages:
        _walk(trace.roots, 0, rows)
        for stage in trace.stages:
            _walk(stage.roots, 1, rows)
    else:
        _walk(trace.roots, 0, rows)
    if not rows:
        return Waterfall()
    origin = min(span.start_time for _, span, _ in rows)
    end = max(span.end_time for _, span, _ in rows)
    total_ms = max(_ms(end - origin), 0.001)
    steps = [_step(depth, span, node, origin, total_ms) for depth, span, node in rows]
    failed = [s for s in steps if s.status != "ok" and s.kind not in (SpanKind.RUN.value, SpanKind.PIPELINE_STEP.value)]
    if failed:
        max(failed, key=lambda s: (s.start_ms + s.duration_ms, -s.depth)).failing = True
    return Waterfall(steps, total_ms)


def stage_runs(trace: RunTrace) -> list[RunRecord]:
    return [stage.run for stage in trace.stages if stage.run is not None]


def _walk(nodes: list[SpanNode], depth: int, rows: list[tuple[int, SpanRecord, SpanNode | None]]) -> None:
    for node in nodes:
        rows.append((depth, node.span, node))
        _walk(node.children, depth + 1, rows)


def _step(depth: int, span: SpanRecord, node: SpanNode | None, origin: datetime, total_ms: float) -> Step:
    attrs = span.attributes
    start_ms = _ms(span.start_time - origin)
    label, note = _describe(span, node)
    message = attrs.get(SpanAttr.ERROR_MESSAGE)
    return Step(
        span_id=span.span_id,
        depth=depth,
        kind=span.kind,
        label=label,
        status=span.status,
        category=span.error_category or _str(attrs.get(SpanAttr.ERROR_CATEGORY)),
        message=_clip(str(message), _MESSAGE_CHARS) if message else None,
        start_ms=start_ms,
        duration_ms=span.duration_ms,
        left_pct=round(100.0 * start_ms / total_ms, 3),
        width_pct=round(max(100.0 * span.duration_ms / total_ms, 0.4), 3),
        prompt_tokens=span.prompt_tokens if span.prompt_tokens is not None else _int(attrs.get(SpanAttr.PROMPT_TOKENS)),
        completion_tokens=span.completion_tokens
        if span.completion_tokens is not None
        else _int(attrs.get(SpanAttr.COMPLETION_TOKENS)),
        cost_usd=span.cost_usd if span.cost_usd is not None else _float(attrs.get(SpanAttr.COST_USD)),
        note=note,
        run_id=span.run_id,
    )


def _describe(span: SpanRecord, node: SpanNode | None) -> tuple[str, str]:
    """(what the step is, a note on it: attempts, wait reason, result size)."""
    attrs, kind = span.attributes, span.kind
    if kind == SpanKind.LLM_CALL.value:
        made = _int(attrs.get(SpanAttr.ATTEMPTS))
        if made is None and node is not None:
            made = sum(1 for child in node.children if child.span.kind == SpanKind.LLM_ATTEMPT.value)
        allowed = _int(attrs.get(SpanAttr.ATTEMPTS_ALLOWED))
        note = f"{made} of {allowed} attempts" if allowed else f"{made} attempt{'s' if made != 1 else ''}"
        if attrs.get(SpanAttr.GIVE_UP):
            note += f"; gave up: {attrs[SpanAttr.GIVE_UP]}"
        if attrs.get(SpanAttr.FALLBACK_MODEL):
            note += f"; fallback {attrs[SpanAttr.FALLBACK_MODEL]}"
        return f"LLM call {span.model or ''}".strip(), note
    if kind == SpanKind.LLM_ATTEMPT.value:
        return f"attempt {attrs.get(SpanAttr.ATTEMPT, '?')} {span.model or ''}".strip(), ""
    if kind == SpanKind.RETRY_WAIT.value:
        wait = _float(attrs.get(SpanAttr.WAIT_SECONDS))
        label = f"retry wait {wait:.2f} s" if wait is not None else "retry wait"
        reasons = [str(attrs[SpanAttr.REASON])] if attrs.get(SpanAttr.REASON) else []
        if attrs.get(SpanAttr.RETRY_AFTER_SECONDS) is not None:
            reasons.append(f"Retry-After {attrs[SpanAttr.RETRY_AFTER_SECONDS]} s")
        after = attrs.get(SpanAttr.AFTER_ATTEMPT)
        return label, (f"after attempt {after}" if after is not None else "") + (
            f": {', '.join(reasons)}" if reasons else ""
        )
    if kind == SpanKind.TOOL_CALL.value:
        name = str(attrs.get(SpanAttr.TOOL) or span.name.removeprefix("tool "))
        arguments = attrs.get(SpanAttr.TOOL_ARGUMENTS)
        shown = _clip(arguments if isinstance(arguments, str) else json.dumps(arguments), _ARGUMENT_CHARS)
        size = attrs.get(SpanAttr.TOOL_RESULT_CHARS)
        return f"tool {name}", (f"args {shown}" if arguments is not None else "") + (
            f" → {size} chars" if size is not None else ""
        )
    if kind == SpanKind.OUTPUT_VALIDATION.value:
        reask = attrs.get(SpanAttr.REASK)
        return "output validation", f"{reask} re-asks" if reask else ""
    if kind == SpanKind.PIPELINE_STEP.value:
        return f"stage {attrs.get(SpanAttr.STAGE, '?')} {attrs.get(SpanAttr.AGENT, span.name)}", ""
    if kind == SpanKind.RUN.value:
        return (span.name if span.name.startswith("run") else f"run {span.name}"), f"run {span.run_id[:8]}"
    return span.name, ""


def _ms(delta: Any) -> float:
    return float(delta.total_seconds() * 1000.0)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
