"""One agent, any type, on one input: the step the streams layer repeats per topic hop.

`execute_agent` is what a chain runs in-process for each stage, and what a worker
runs for one stage consuming `pipeline.<p>.<i>.<agent>`: same input rule
(`next_stage_input`), same context rule (`stage_context`), so a pipeline behaves the
same whether its stages share a process or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from app.contracts import SpanKind
from app.contracts.errors import BadInputError, InternalError, RunTimeoutError
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


def next_stage_input(output: Any) -> dict[str, Any]:
    """Stage i's output becomes stage i+1's input: objects as is, anything else wrapped."""
    return dict(output) if isinstance(output, Mapping) else {"message": output}


def stage_context(base: Mapping[str, Any], agent_name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {**base, "agent_name": agent_name, "payload": dict(payload)}


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
    current: Mapping[str, Any] = payload
    output: Any = None
    for index, name in enumerate(chain.agents):
        agent = project.agents.get(name)
        if agent is None:
            raise BadInputError(f"stage {index} of {chain.name!r}: unknown agent {name!r}")
        stage_state = RunState(usage=state.usage)  # shared usage: budgets and totals see every stage
        stage_deps = replace(
            deps,
            context=stage_context(deps.context, name, current),
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
        state.stage_outputs.append(output)
        budget.check_after_response(state.usage)
        current = next_stage_input(output)
    return output
