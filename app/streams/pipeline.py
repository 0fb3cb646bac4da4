"""Sequential pipelines over Kafka: stage requests and the pipeline's own result.

A request on `agent.<p>.requests` is routed to stage 0's topic. When stage i ends,
its worker produces stage i+1's request (input = `next_stage_input(output)`) or, after
the last stage or on any failure, the pipeline's result: run_id = the root run id,
status and error of the stage that ended it, usage summed over the stages, duration
since the pipeline request was routed. Stage run ids derive from the root run id and
the stage index, so a redelivered stage produces the same next request, which the next
stage then recognises as a duplicate. The rules a stage is built by are the engine's
(`app.engine.stage`), the same as for a chain run in one process.
"""

from __future__ import annotations

from datetime import datetime

from app.contracts import RunRequest, RunResult, RunStatus, Usage
from app.contracts.runs import utc_now
from app.engine.stage import (
    ended_pipeline_context,
    next_stage_input,
    pipeline_budget,
    stage_pipeline_context,
    stage_run_id,
)
from app.project.models import SequentialAgentSpec

__all__ = ["first_stage", "next_stage", "pipeline_result", "stage_run_id"]


def _add(a: Usage | None, b: Usage) -> Usage:
    total = Usage() if a is None else a.model_copy()
    total.add(b)
    return total


def first_stage(pipeline: SequentialAgentSpec, request: RunRequest, now: datetime | None = None) -> RunRequest:
    """Stage 0's request: the pipeline's deadline and budget start here and travel with every stage."""
    started = now or utc_now()
    deadline = request.deadline
    if pipeline.timeout is not None:
        own = started.timestamp() + pipeline.timeout
        if deadline is None or own < deadline.timestamp():
            deadline = datetime.fromtimestamp(own, tz=started.tzinfo)
    return RunRequest(
        run_id=stage_run_id(request.run_id, 0),
        agent=pipeline.agents[0],
        input=dict(request.input),
        tenant=request.tenant,
        trigger=request.trigger,
        deployment=request.deployment,
        deadline=deadline,
        context=dict(request.context),
        pipeline=stage_pipeline_context(
            pipeline, request.run_id, 0, started_at=started, spent=Usage(), budget=pipeline_budget(pipeline)
        ),
    )


def next_stage(pipeline: SequentialAgentSpec, request: RunRequest, result: RunResult) -> RunRequest | None:
    """Stage i+1's request after a completed stage i, or None when the pipeline ends here."""
    ctx = request.pipeline
    assert ctx is not None
    index = ctx.stage + 1
    if result.status != RunStatus.COMPLETED or index >= len(pipeline.agents):
        return None
    return RunRequest(
        run_id=stage_run_id(ctx.root_run_id, index),
        agent=pipeline.agents[index],
        input=next_stage_input(result.output),
        tenant=request.tenant,
        trigger=request.trigger,
        deployment=request.deployment,
        deadline=request.deadline,
        context=dict(request.context),
        pipeline=stage_pipeline_context(
            pipeline,
            ctx.root_run_id,
            index,
            started_at=ctx.started_at or result.started_at,
            spent=_add(ctx.usage, result.usage),
            budget=ctx.budget,  # the limits the pipeline started with, whatever its spec says now
        ),
    )


def pipeline_result(request: RunRequest, result: RunResult) -> RunResult:
    """The pipeline's own result, from the stage result that ended it."""
    ctx = request.pipeline
    assert ctx is not None
    started = ctx.started_at or result.started_at
    return RunResult.for_request(
        request,
        result.status,
        started_at=started,
        ended_at=result.ended_at,
        run_id=ctx.root_run_id,
        agent=ctx.pipeline,
        output=result.output,
        partial=result.partial,
        error=result.error,
        usage=_add(ctx.usage, result.usage),
        pipeline=ended_pipeline_context(ctx),
        queued_at=None,  # the submitted request's time is not carried; its stage-0 run has its own
    )
