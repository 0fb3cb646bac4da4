"""Run results and span events shaped as the engine and the pipeline emit them."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from app.contracts import PipelineContext, RunError, RunResult, RunStatus, SpanEvent, SpanKind, SpanStatus, Usage
from app.contracts.errors import ErrorCategory

T0 = datetime(2026, 5, 4, 10, 0, 0, tzinfo=UTC)
_ids = itertools.count(1)


def span_id() -> str:
    return f"{next(_ids):016x}"


def result(
    run_id: str,
    agent: str = "summarizer",
    *,
    status: RunStatus = RunStatus.COMPLETED,
    start: datetime = T0,
    seconds: float = 1.5,
    tokens: tuple[int, int] = (120, 30),
    cost: float | None = 0.000045,
    tenant: str = "acme",
    category: ErrorCategory | None = None,
    pipeline: PipelineContext | None = None,
    output: Any = None,
    trigger: str = "api",
) -> RunResult:
    return RunResult(
        run_id=run_id,
        agent=agent,
        status=status,
        output=output if output is not None else ({"answer": f"done {run_id}"} if status == "completed" else None),
        error=RunError(category=category, message=f"{category.value} happened") if category else None,
        usage=Usage(
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            total_tokens=sum(tokens),
            cost_usd=cost,
            llm_calls=1,
        ),
        started_at=start,
        ended_at=start + timedelta(seconds=seconds),
        duration_ms=seconds * 1000,
        tenant=tenant,
        trigger={"source": trigger, "metadata": {"topic": "orders"}},
        pipeline=pipeline,
        queued_at=start - timedelta(seconds=0.25),
    )


def span(
    run_id: str,
    trace_id: str,
    kind: SpanKind,
    name: str,
    *,
    parent: str | None,
    start: datetime = T0,
    ms: float = 100.0,
    error: ErrorCategory | None = None,
    **attributes: Any,
) -> SpanEvent:
    if error is not None:
        attributes = {"error.category": error.value, "error.message": f"{error.value}: provider said no", **attributes}
    return SpanEvent(
        run_id=run_id,
        trace_id=trace_id,
        span_id=span_id(),
        parent_span_id=parent,
        kind=kind,
        name=name,
        status=SpanStatus.ERROR if error else SpanStatus.OK,
        start=start,
        end=start + timedelta(milliseconds=ms),
        duration_ms=ms,
        attributes=attributes,
    )


def llm_run_spans(run_id: str, *, start: datetime = T0, model: str = "openai/gpt-4o-mini") -> list[SpanEvent]:
    """run ─┬─ llm_call ─┬─ attempt 1 ✗ rate_limit
    │            ├─ retry_wait (Retry-After 2 s)
    │            └─ attempt 2 ✓
    ├─ tool_call lookup(order_id=…)
    └─ output_validation ✓ (after 1 re-ask)"""
    trace = hashlib.md5(run_id.encode()).hexdigest()
    run = span(run_id, trace, SpanKind.RUN, "run summarizer", parent=None, start=start, ms=1500,
               agent="summarizer", tenant="acme", status="completed", **{"llm.prompt_tokens": 120,
               "llm.completion_tokens": 30, "cost_usd": 0.000045, "llm_retries": 1})  # fmt: skip
    call = span(run_id, trace, SpanKind.LLM_CALL, f"llm {model}", parent=run.span_id, start=start, ms=1200,
                model=model, **{"llm.step": 1, "llm.prompt_tokens": 120, "llm.completion_tokens": 30,
                "cost_usd": 0.000045})  # fmt: skip
    first = span(run_id, trace, SpanKind.LLM_ATTEMPT, f"attempt {model}", parent=call.span_id, start=start, ms=15,
                 error=ErrorCategory.RATE_LIMIT, model=model, attempt=1)  # fmt: skip
    wait = span(run_id, trace, SpanKind.RETRY_WAIT, "retry_wait", parent=call.span_id,
                start=start + timedelta(milliseconds=20), ms=1000, wait_seconds=1.0, after_attempt=1,
                reason="rate_limit", retry_after_seconds=2)  # fmt: skip
    second = span(run_id, trace, SpanKind.LLM_ATTEMPT, f"attempt {model}", parent=call.span_id,
                  start=start + timedelta(milliseconds=1030), ms=160, model=model, attempt=2,
                  **{"llm.prompt_tokens": 120, "llm.completion_tokens": 30})  # fmt: skip
    tool = span(run_id, trace, SpanKind.TOOL_CALL, "tool lookup", parent=run.span_id,
                start=start + timedelta(milliseconds=1210), ms=40, tool="lookup",
                **{"tool.call_id": "call_1", "tool.result_chars": 2345,
                   "tool.arguments": '{"order_id": "A-17", "api_key": "[REDACTED]"}'})  # fmt: skip
    check = span(run_id, trace, SpanKind.OUTPUT_VALIDATION, "output_validation", parent=run.span_id,
                 start=start + timedelta(milliseconds=1260), ms=2, valid=True, reask=1)  # fmt: skip
    return [first, wait, second, call, tool, check, run]  # the order spans end in


def failed_tool_spans(run_id: str, *, start: datetime = T0) -> list[SpanEvent]:
    trace = hashlib.md5(run_id.encode()).hexdigest()
    run = span(run_id, trace, SpanKind.RUN, "run fetcher", parent=None, start=start, ms=300,
               error=ErrorCategory.TOOL_TIMEOUT)  # fmt: skip
    tool = span(run_id, trace, SpanKind.TOOL_CALL, "tool fetch", parent=run.span_id, start=start, ms=250,
                error=ErrorCategory.TOOL_TIMEOUT, tool="fetch")  # fmt: skip
    return [tool, run]


def pipeline_results(root: str, stages: list[str], *, start: datetime = T0) -> list[RunResult]:
    """Each stage's result, then the pipeline's own (usage summed), as the worker emits them."""
    out: list[RunResult] = []
    parent = root
    total = Usage()
    for index, agent in enumerate(stages):
        stage_id = f"{root}-s{index}"
        ctx = PipelineContext(pipeline="invoice", stage=index, root_run_id=root, parent_run_id=parent)
        stage = result(stage_id, agent, start=start + timedelta(seconds=2 * index), seconds=1.5, pipeline=ctx,
                       tokens=(100 + index, 10 + index), cost=0.0001 * (index + 1))  # fmt: skip
        out.append(stage)
        total.add(stage.usage)
        parent = stage_id
    whole = RunResult(
        run_id=root,
        agent="invoice",
        status=RunStatus.COMPLETED,
        output={"stored": True},
        usage=total,
        started_at=start,
        ended_at=out[-1].ended_at,
        duration_ms=(out[-1].ended_at - start).total_seconds() * 1000,
        tenant="acme",
        pipeline=PipelineContext(pipeline="invoice", stage=len(stages) - 1, root_run_id=root, parent_run_id=parent),
    )
    return [*out, whole]
