"""A `RunTrace` drawn for a terminal: one line per step, box-drawing branches.

    invoice-extractor  run 5b1c…  ✓ completed  1.20 s  300 in / 100 out  $0.000123
    ├─ llm gpt-4o-mini  ✓ 820 ms  300 in / 100 out  $0.000123  2 of 3 attempts
    │  ├─ attempt 1 gpt-4o-mini  ✗ rate_limit  12 ms  429 Too Many Requests
    │  ├─ wait 1.00 s after attempt 1: rate_limit, Retry-After 1 s
    │  └─ attempt 2 gpt-4o-mini  ✓ 800 ms  300 in / 100 out
    ├─ tool extract_text(path="a.pdf")  ✓ 120 ms  → 2,345 chars
    └─ output validation  ✓ valid

A failed LLM step says why it gave up (`gave up: Retry-After 120.00 s would pass the
deadline (30.00 s left)`) and why the fallback was not tried; a rejected answer hangs
under its output validation step (`answer: …`, clipped here, whole in `--json`).

A run's own span is folded into the header (its children hang from it directly); a
pipeline's stages hang from the pipeline's header, each with its own steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.cli.history_format import Paint, count, duration, money, when
from app.contracts import SpanKind
from app.contracts.spans import FallbackSkip, GiveUp, SpanAttr
from app.observability.history.records import RunRecord, SpanRecord
from app.observability.history.trace_tree import RunTrace, SpanNode

# Span attribute names the engine writes (the wire names, app/contracts/spans.py).
_ERROR_CATEGORY = SpanAttr.ERROR_CATEGORY
_ERROR_MESSAGE = SpanAttr.ERROR_MESSAGE
_PROMPT_TOKENS = SpanAttr.PROMPT_TOKENS
_COMPLETION_TOKENS = SpanAttr.COMPLETION_TOKENS
_COST = SpanAttr.COST_USD
_TOOL_ARGUMENT_KEYS = (SpanAttr.TOOL_ARGUMENTS, "tool.args", "arguments")

_MESSAGE_CHARS = 160
_ARGUMENT_CHARS = 100
_ANSWER_CHARS = 300

_FALLBACK_SKIPPED = {
    FallbackSkip.NOT_CONFIGURED.value: "no fallback model",
    FallbackSkip.NOT_A_PROVIDER_ERROR.value: "fallback not tried: not a provider error",
    FallbackSkip.DEADLINE_PASSED.value: "fallback not tried: deadline passed",
}


@dataclass
class _Line:
    text: str
    children: list[_Line] = field(default_factory=list)


def render_trace(trace: RunTrace, paint: Paint) -> list[str]:
    lines = _run_header(trace.run, trace.run_id, paint)
    nodes: list[_Line] = []
    if trace.stages:
        nodes = [_stage_line(stage, paint) for stage in trace.stages]
        nodes.extend(_span_lines(trace.roots, paint))  # spans of the pipeline itself, if any
    else:
        nodes = _span_lines(_fold_run_span(trace.roots), paint)
    if not nodes:
        lines.append(paint.dim("(no steps recorded: spans are off with --no-traces, or not projected yet)"))
    _draw(nodes, "", lines)
    return lines


def _run_header(run: RunRecord | None, run_id: str, paint: Paint) -> list[str]:
    if run is None:
        return [f"run {run_id}  " + paint.dim("(no result recorded yet: still running, or its result was lost)")]
    kind = {"pipeline": "pipeline run", "stage": f"stage {run.stage} of {run.pipeline}, run"}.get(run.kind, "run")
    first = f"{paint.bold(run.agent)}  {kind} {run.run_id}  {_run_status(run, paint)}  " + _usage(
        run.duration_ms, run.prompt_tokens, run.completion_tokens, run.cost_usd, priced=True
    )
    facts = [
        f"tenant {run.tenant}",
        f"trigger {run.trigger_source}",
        f"started {when(run.started_at)} UTC",
        f"{run.llm_calls} LLM call{'s' if run.llm_calls != 1 else ''}",
        f"{run.tool_calls} tool call{'s' if run.tool_calls != 1 else ''}",
    ]
    if run.deployment:
        facts.append(f"deployment {run.deployment}")
    if run.kind == "stage":
        facts.append(f"root {run.root_run_id}")
    lines = [first, "  " + paint.dim(" · ".join(facts))]
    if run.error_category:
        lines.append("  " + paint.fail(f"✗ {run.error_category}") + f": {_clip(run.error_message or '')}")
    return lines


def _run_status(run: RunRecord, paint: Paint) -> str:
    partial = " (partial)" if run.partial else ""
    if run.status == "completed":
        return paint.ok(f"✓ {run.status}{partial}")
    return paint.fail(f"✗ {run.status}{partial}")


def _stage_line(stage: RunTrace, paint: Paint) -> _Line:
    run = stage.run
    assert run is not None
    text = f"stage {run.stage} {paint.bold(run.agent)}  run {run.run_id}  {_run_status(run, paint)}  " + _usage(
        run.duration_ms, run.prompt_tokens, run.completion_tokens, run.cost_usd, priced=True
    )
    if run.error_category:
        text += "  " + paint.fail(f"✗ {run.error_category}") + paint.dim(f" {_clip(run.error_message or '')}")
    return _Line(text, _span_lines(_fold_run_span(stage.roots), paint))


def _fold_run_span(roots: list[SpanNode]) -> list[SpanNode]:
    """The run span's children, when the run has exactly one run span (the usual case)."""
    if len(roots) == 1 and roots[0].span.kind == SpanKind.RUN.value:
        return roots[0].children
    return roots


def _span_lines(nodes: list[SpanNode], paint: Paint) -> list[_Line]:
    return [_Line(_span_text(node, paint), _answer_lines(node) + _span_lines(node.children, paint)) for node in nodes]


def _answer_lines(node: SpanNode) -> list[_Line]:
    """The answer an output validation step rejected, as a line of its own."""
    answer = node.span.attributes.get(SpanAttr.LAST_ANSWER)
    if node.span.kind != SpanKind.OUTPUT_VALIDATION.value or not isinstance(answer, str):
        return []
    length = node.span.attributes.get(SpanAttr.LAST_ANSWER_CHARS)
    size = f"  ({count(int(length))} chars)" if isinstance(length, int) and length > _ANSWER_CHARS else ""
    return [_Line(f"answer: {_clip(answer, _ANSWER_CHARS)}{size}")]


def _span_text(node: SpanNode, paint: Paint) -> str:
    span, attrs = node.span, node.span.attributes
    mark = _mark(span, paint)
    kind = span.kind
    if kind == SpanKind.LLM_CALL.value:
        attempts = sum(1 for child in node.children if child.span.kind == SpanKind.LLM_ATTEMPT.value)
        text = f"llm {span.model or '?'}  {mark}  " + _usage(
            span.duration_ms, span.prompt_tokens, span.completion_tokens, span.cost_usd, priced=span.status == "ok"
        )
        used, allowed = _int(attrs.get(SpanAttr.ATTEMPTS)), _int(attrs.get(SpanAttr.ATTEMPTS_ALLOWED))
        used = attempts if used is None else used
        total = allowed or used
        text += f"  {used} of {allowed}" if allowed else f"  {used}"
        text += f" attempt{'s' if total != 1 else ''}"
        if attrs.get(SpanAttr.FALLBACK_MODEL):
            text += f"  fallback → {attrs[SpanAttr.FALLBACK_MODEL]} after {attrs.get(SpanAttr.FALLBACK_REASON, '?')}"
        skipped = attrs.get(SpanAttr.FALLBACK_SKIPPED)
        if skipped:
            text += f"  {_FALLBACK_SKIPPED.get(str(skipped), f'fallback not tried: {skipped}')}"
        if attrs.get(SpanAttr.GIVE_UP):
            text += "  " + paint.fail(f"gave up: {_give_up(attrs, span, allowed)}")
    elif kind == SpanKind.LLM_ATTEMPT.value:
        text = f"attempt {attrs.get(SpanAttr.ATTEMPT, '?')} {span.model or '?'}  {mark}  {duration(span.duration_ms)}"
        if span.prompt_tokens is not None or span.completion_tokens is not None:
            text += f"  {count(span.prompt_tokens)} in / {count(span.completion_tokens)} out"
    elif kind == SpanKind.RETRY_WAIT.value:
        wait = attrs.get(SpanAttr.WAIT_SECONDS)
        text = f"wait {_secs(wait) if wait is not None else duration(span.duration_ms)}"
        if attrs.get(SpanAttr.AFTER_ATTEMPT) is not None:
            text += f" after attempt {attrs[SpanAttr.AFTER_ATTEMPT]}"
        reasons = [str(attrs[SpanAttr.REASON])] if attrs.get(SpanAttr.REASON) else []
        if attrs.get(SpanAttr.RETRY_AFTER_SECONDS) is not None:
            reasons.append(f"Retry-After {_secs(attrs[SpanAttr.RETRY_AFTER_SECONDS])}")
        if reasons:
            text += ": " + ", ".join(reasons)
        if span.status != "ok":
            text += f"  {mark}"
    elif kind == SpanKind.TOOL_CALL.value:
        name = attrs.get(SpanAttr.TOOL) or span.name.removeprefix("tool ")
        arguments = _arguments(attrs)
        call = name if arguments is None else f"{name}({arguments})"
        text = f"tool {call}  {mark}  {duration(span.duration_ms)}"
        if attrs.get(SpanAttr.ATTEMPT) is not None:
            text += f"  attempt {attrs[SpanAttr.ATTEMPT]}"
        if attrs.get(SpanAttr.TOOL_RESULT_CHARS) is not None:
            text += f"  → {count(int(attrs[SpanAttr.TOOL_RESULT_CHARS]))} chars"
    elif kind == SpanKind.OUTPUT_VALIDATION.value:
        text = f"output validation  {mark}"
        if span.status == "ok":
            text += " valid"
        if attrs.get(SpanAttr.REASK):
            reask = attrs[SpanAttr.REASK]
            text += f"  after {reask} re-ask{'s' if reask != 1 else ''}"
    elif kind == SpanKind.PIPELINE_STEP.value:
        stage, agent = attrs.get(SpanAttr.STAGE, "?"), attrs.get(SpanAttr.AGENT, span.name)
        text = f"stage {stage} {agent}  {mark}  {duration(span.duration_ms)}"
    elif kind == SpanKind.RUN.value:
        text = f"{span.name}  {mark}  " + _usage(
            span.duration_ms,
            _int(attrs.get(_PROMPT_TOKENS)),
            _int(attrs.get(_COMPLETION_TOKENS)),
            _float(attrs.get(_COST)),
            priced=True,
        )
    else:
        text = f"{span.name}  {mark}  {duration(span.duration_ms)}"
    message = attrs.get(_ERROR_MESSAGE)
    if span.status != "ok" and message:
        text += "  " + paint.dim(_clip(str(message)))
    return text


def _give_up(attrs: Mapping[str, Any], span: SpanRecord, allowed: int | None) -> str:
    """Why an LLM step stopped retrying, in words."""
    reason = str(attrs[SpanAttr.GIVE_UP])
    left = attrs.get(SpanAttr.GIVE_UP_REMAINING_SECONDS)
    left_text = f" ({_secs(left)} left)" if left is not None else ""
    if reason == GiveUp.RETRY_AFTER_PAST_DEADLINE.value:
        wait = attrs.get(SpanAttr.RETRY_AFTER_SECONDS, attrs.get(SpanAttr.GIVE_UP_WAIT_SECONDS))
        return f"Retry-After {_secs(wait)} would pass the deadline{left_text}"
    if reason == GiveUp.BACKOFF_PAST_DEADLINE.value:
        return f"the {_secs(attrs.get(SpanAttr.GIVE_UP_WAIT_SECONDS))} back-off would pass the deadline{left_text}"
    if reason == GiveUp.ATTEMPTS_EXHAUSTED.value:
        return f"all {allowed} attempts used" if allowed else "attempts exhausted"
    if reason == GiveUp.NOT_RETRYABLE.value:
        category = span.error_category or attrs.get(_ERROR_CATEGORY) or "this error"
        return f"{category} is not retried"
    return reason


def _mark(span: SpanRecord, paint: Paint) -> str:
    if span.status == "ok":
        return paint.ok("✓")
    return paint.fail(f"✗ {span.error_category or span.attributes.get(_ERROR_CATEGORY) or 'error'}")


def _usage(duration_ms: float, prompt: int | None, completion: int | None, cost: float | None, *, priced: bool) -> str:
    parts = [duration(duration_ms)]
    if prompt or completion:
        parts.append(f"{count(prompt or 0)} in / {count(completion or 0)} out")
    if priced and (prompt or completion or cost):
        parts.append(money(cost))
    return "  ".join(parts)


def _arguments(attrs: Mapping[str, Any]) -> str | None:
    """The call's arguments as `k=v, …`; None when the span does not carry them."""
    for key in _TOOL_ARGUMENT_KEYS:
        if key in attrs:
            value = attrs[key]
            break
    else:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return _clip(value, _ARGUMENT_CHARS)
    if isinstance(value, Mapping):
        text = ", ".join(f"{k}={json.dumps(v, default=str, ensure_ascii=False)}" for k, v in value.items())
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
    return _clip(text, _ARGUMENT_CHARS)


def _draw(nodes: list[_Line], prefix: str, out: list[str]) -> None:
    for index, node in enumerate(nodes):
        last = index == len(nodes) - 1
        out.append(f"{prefix}{'└─ ' if last else '├─ '}{node.text}")
        _draw(node.children, prefix + ("   " if last else "│  "), out)


def _clip(text: str, limit: int = _MESSAGE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _secs(value: Any) -> str:
    try:
        return f"{float(value):.2f} s"
    except (TypeError, ValueError):
        return str(value)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
