"""Sequential pipelines over Kafka: stage requests and the pipeline's own result.

A request on `agent.<p>.requests` is routed to stage 0's topic. When stage i ends,
its worker produces stage i+1's request (input = `next_stage_input(output)`) or, after
the last stage or on any failure, the pipeline's result: run_id = the root run id,
status and error of the stage that ended it, usage summed over the stages, duration
since the pipeline request was routed. Stage run ids derive from the root run id and
the stage index, so a redelivered stage produces the same next request, which the next
stage then recognises as a duplicate.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from app.contracts import PipelineContext, RunRequest, RunResult, RunStatus, Usage
from app.contracts.runs import utc_now
from app.engine import next_stage_input
from app.project.models import SequentialAgentSpec

_STAGE_NAMESPACE = uuid.UUID("3c1f7e52-8a4b-4d8e-9a0e-5b6f1d2c7e90")


def stage_run_id(root_run_id: str, stage: int) -> str:
    return str(uuid.uuid5(_STAGE_NAMESPACE, f"{root_run_id}\x00{stage}"))


def _add(a: Usage | None, b: Usage) -> Usage:
    total = Usage() if a is None else a.model_copy()
    total.add(b)
    return total


def first_stage(pipeline: SequentialAgentSpec, request: RunRequest, now: datetime | None = None) -> RunRequest:
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
        pipeline=PipelineContext(
            pipeline=pipeline.name,
            stage=0,
            root_run_id=request.run_id,
            parent_run_id=request.run_id,
            started_at=started,
            usage=Usage(),
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
        pipeline=ctx.model_copy(
            update={"stage": index, "parent_run_id": request.run_id, "usage": _add(ctx.usage, result.usage)}
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
        pipeline=ctx.model_copy(update={"parent_run_id": result.run_id, "usage": None}),
    )
