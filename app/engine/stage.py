"""One agent, any type, on one input: the step the streams layer repeats per topic hop.

`execute_agent` is what a chain runs in-process for each stage, and what a worker
runs for one stage consuming `pipeline.<p>.<i>.<agent>`. Both paths build a stage from
the rules here, so a pipeline behaves the same whether its stages share a process or
not (docs/engine.md):

- input: stage i's output becomes stage i+1's input (`next_stage_input`);
- identity: stage i's run id is `stage_run_id(root, i)`; its `PipelineContext` comes
  from `stage_pipeline_context` (in one process it is in the tools' `context["pipeline"]`,
  over Kafka it travels on the stage request);
- tools: `context["run_id"]` is the pipeline's own run id (the one its caller got back)
  in every stage, and `context["agent_name"]` the stage's agent;
- budget: the pipeline's `budget` bounds the stages together. In one process they share
  one usage; over Kafka the context carries the limits and the usage so far, and
  `carried_budget` is what is left for the stage;
- deadline: the pipeline's `timeout` bounds the whole pipeline (over Kafka: the stage
  request's `deadline`), each stage's own `timeout` its stage;
- result: a pipeline's result has `pipeline` = the context of the stage that ended it
  (`ended_pipeline_context`), so `pipeline.stage` says where a failed pipeline stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from app.contracts import PipelineContext, RunRequest, SpanKind, Usage
from app.contracts.errors import BadInputError, InternalError, RunTimeoutError
from app.contracts.runs import PipelineBudget
from app.engine.budget import Budget
from app.engine.loop import run_llm_agent
from app.engine.state import RunDeps, RunState, budget_for
from app.engine.tool_agent import run_tool_agent
from app.project.models import LLMAgentSpec, SequentialAgentSpec, ToolAgentSpec
from app.project.project import Project


class StageTimeoutError(RunTimeoutError):
    """A stage's own `timeout` passed inside a chain: the chain ends as `timeout` too."""

    def __init__(self, index: int, agent: str, timeout_seconds: float) -> None:
        super().__init__(timeout_seconds)
        self.message = f"stage {index} ({agent}) did not finish within {timeout_seconds:g}s"
        self.args = (self.message,)


_STAGE_NAMESPACE = uuid.UUID("3c1f7e52-8a4b-4d8e-9a0e-5b6f1d2c7e90")


def next_stage_input(output: Any) -> dict[str, Any]:
    """Stage i's output becomes stage i+1's input: objects as is, anything else wrapped."""
    return dict(output) if isinstance(output, Mapping) else {"message": output}


def stage_run_id(root_run_id: str, stage: int) -> str:
    """Derived from the pipeline's run id, so a redelivered stage keeps its id (and is recognised)."""
    return str(uuid.uuid5(_STAGE_NAMESPACE, f"{root_run_id}\x00{stage}"))


def pipeline_budget(chain: SequentialAgentSpec) -> PipelineBudget | None:
    spec = chain.budget
    if spec is None or (spec.max_tokens is None and spec.max_cost_usd is None):
        return None
    return PipelineBudget(max_tokens=spec.max_tokens, max_cost_usd=spec.max_cost_usd)


def stage_pipeline_context(
    chain: SequentialAgentSpec,
    root_run_id: str,
    index: int,
    *,
    started_at: datetime,
    spent: Usage,
    budget: PipelineBudget | None,
) -> PipelineContext:
    """Stage `index`'s place in the pipeline run `root_run_id`, `spent` by the stages before it."""
    return PipelineContext(
        pipeline=chain.name,
        stage=index,
        root_run_id=root_run_id,
        parent_run_id=root_run_id if index == 0 else stage_run_id(root_run_id, index - 1),
        started_at=started_at,
        usage=spent.model_copy(),
        budget=budget,
    )


def ended_pipeline_context(ctx: PipelineContext) -> PipelineContext:
    """The `pipeline` of a pipeline's own result: the context of the stage that ended it,
    its parent that stage's run."""
    return ctx.model_copy(update={"parent_run_id": stage_run_id(ctx.root_run_id, ctx.stage), "usage": None})


def carried_budget(ctx: PipelineContext | None) -> Budget | None:
    """What the pipeline's budget leaves for the stage `ctx` starts: its limits less what the
    stages before spent (a cost limit after a call of unknown price cannot be enforced)."""
    if ctx is None or ctx.budget is None:
        return None
    spent = ctx.usage or Usage()
    limits = ctx.budget
    max_tokens = None if limits.max_tokens is None else max(0, limits.max_tokens - spent.total_tokens)
    max_cost = None
    if limits.max_cost_usd is not None and spent.cost_usd is not None:
        max_cost = max(0.0, limits.max_cost_usd - spent.cost_usd)
    return Budget(max_tokens=max_tokens, max_cost_usd=max_cost)


def result_pipeline(request: RunRequest, agent: Any, state: RunState, started_at: datetime) -> PipelineContext | None:
    """The `pipeline` of a run's result: the request's own; for a chain run in one process,
    the context of the stage that ended it, as a pipeline's result over Kafka has."""
    if request.pipeline is not None or not isinstance(agent, SequentialAgentSpec):
        return request.pipeline
    ended = min(len(state.stage_outputs), len(agent.agents) - 1)  # a stage's output is kept once it completed
    ctx = stage_pipeline_context(
        agent, request.run_id, ended, started_at=started_at, spent=Usage(), budget=pipeline_budget(agent)
    )
    return ended_pipeline_context(ctx)


def stage_context(
    base: Mapping[str, Any], agent_name: str, payload: Mapping[str, Any], pipeline: PipelineContext
) -> dict[str, Any]:
    """A stage's tool context: the run's (its `run_id` the pipeline's), the stage's agent,
    input and place in the pipeline, as a stage request over Kafka gives them."""
    return {**base, "agent_name": agent_name, "payload": dict(payload), "pipeline": pipeline.model_dump(mode="json")}


async def execute_agent(
    deps: RunDeps,
    state: RunState,
    project: Project,
    agent: Any,
    payload: Mapping[str, Any],
) -> Any:
    if isinstance(agent, LLMAgentSpec):
        schema = project.schemas.get(agent.output_schema) if agent.output_schema else None
        if agent.output_schema and schema is None:
            raise InternalError(f"output schema {agent.output_schema!r} of {agent.name!r} is not loaded")
        return await run_llm_agent(deps, state, agent, payload, schema)
    if isinstance(agent, ToolAgentSpec):
        return await run_tool_agent(deps, state, agent, payload)
    if isinstance(agent, SequentialAgentSpec):
        return await run_sequential(deps, state, project, agent, payload)
    raise InternalError(f"unknown agent type {type(agent).__name__}")


async def run_sequential(
    deps: RunDeps,
    state: RunState,
    project: Project,
    chain: SequentialAgentSpec,
    payload: Mapping[str, Any],
) -> Any:
    """Each stage gets the previous stage's output; usage adds up into the chain's state.

    Every stage has its own message list (a stage never sees another's conversation);
    the chain's `state` keeps the outputs so far for a partial result.
    """
    budget = budget_for(chain, deps.outer_budget)
    started_at, limits = deps.clock.now(), pipeline_budget(chain)
    current: Mapping[str, Any] = payload
    output: Any = None
    for index, name in enumerate(chain.agents):
        agent = project.agents.get(name)
        if agent is None:
            raise BadInputError(f"stage {index} of {chain.name!r}: unknown agent {name!r}")
        stage_state = RunState(usage=state.usage)  # shared usage: budgets and totals see every stage
        place = stage_pipeline_context(
            chain, deps.run_id, index, started_at=started_at, spent=state.usage, budget=limits
        )
        stage_deps = replace(
            deps,
            context=stage_context(deps.context, name, current, place),
            deadline=deps.deadline.narrowed(agent.timeout),
            outer_budget=budget,
        )
        with deps.tracer.span(SpanKind.PIPELINE_STEP, f"stage {index} {name}", stage=index, agent=name):
            try:
                async with deps.clock.timeout(agent.timeout) as scope:
                    output = await execute_agent(stage_deps, stage_state, project, agent, current)
            except TimeoutError:
                if not scope.expired():
                    raise
                raise StageTimeoutError(index, name, float(agent.timeout or 0)) from None
            finally:
                state.last_text = stage_state.last_text or state.last_text
                state.tool_results.extend(stage_state.tool_results)
                state.llm_retries += stage_state.llm_retries
        budget.check_after_response(state.usage)  # before the output is kept: this stage ended the chain
        state.stage_outputs.append(output)
        current = next_stage_input(output)
    return output
