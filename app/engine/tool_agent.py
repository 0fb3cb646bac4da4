"""`type: tool` agents: one function called as `func(payload=..., [context=...])`, no LLM.

The call is retried per `retry_options` on tool_error / tool_timeout (a tool agent is
usually a thin client of some service, and its failures are as transient as an LLM's);
the last failure ends the run with its category.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.contracts import SpanKind
from app.contracts.errors import InternalError, ToolError
from app.engine.retry import call_with_retries, traced_sleeper
from app.engine.state import RunDeps, RunState
from app.project.models import ToolAgentSpec


async def run_tool_agent(deps: RunDeps, state: RunState, agent: ToolAgentSpec, payload: Mapping[str, Any]) -> Any:
    if not agent.resolved_tools:
        raise InternalError(f"tool agent {agent.name!r} has no resolved tool {agent.tool_name!r}")
    tool = agent.resolved_tools[0]
    options = agent.retry_options
    policy = deps.policy(options.attempts, options.initial_delay, options.max_delay)

    async def attempt(number: int) -> Any:
        with deps.tracer.span(SpanKind.TOOL_CALL, f"tool {tool.name}", tool=tool.name, attempt=number):
            state.usage.tool_calls += 1
            timeout = deps.deadline.cap(agent.tool_timeout) if agent.tool_timeout else deps.deadline.remaining()
            value = await deps.tools.invoke(
                tool, {"payload": dict(payload)}, context=deps.context, timeout=timeout, isolation=agent.isolation
            )
            state.tool_results.append({"tool": tool.name, "result": value})
            return value

    return await call_with_retries(
        attempt,
        policy=policy,
        deadline=deps.deadline,
        rng=deps.rng,
        sleeper=traced_sleeper(deps.tracer, deps.clock),
        retry_on=lambda exc: isinstance(exc, ToolError),
    )
