"""The LLM agent loop: ask the model, run the tools it asks for, until a valid answer.

    ┌─► budget check ─► llm_call (retries, fallback) ─► tool calls? ─yes─► run them
    │                                                     │ no           (in parallel)
    │                                                     ▼                   │
    │                                   output_schema? ─► validate ─ok─► answer
    └──────────── re-ask with the violation (while attempts remain) ◄─✗       │
    └──────────────────────────── tool messages appended ◄────────────────────┘

The loop only mutates its `RunState`; everything else comes from `RunDeps`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from app.compat.discovery import SEARCH_TOOLS, Discovery
from app.compat.mcp_tools import mcp_tools
from app.contracts import SpanKind
from app.contracts.errors import ContextLengthError, OutputValidationError, clip_answer
from app.contracts.spans import SpanAttr
from app.engine.approval import gate_calls
from app.engine.compression import compress, over_budget
from app.engine.model import ToolCall, reasoning_effort_of
from app.engine.model_call import call_model
from app.engine.output import reask_message, schema_instruction, validate_answer
from app.engine.prompt import initial_messages, render_system_prompt
from app.engine.state import RunDeps, RunState, budget_for
from app.engine.tools import ToolOutcome
from app.project import evaluate_condition, select_tools
from app.project.models import LLMAgentSpec


async def run_llm_agent(
    deps: RunDeps,
    state: RunState,
    agent: LLMAgentSpec,
    payload: Mapping[str, Any],
    output_schema: Mapping[str, Any] | None,
) -> Any:
    tools = {tool.name: tool for tool in select_tools(agent, payload, deps.context)}  # by the name the LLM sees
    hidden = [
        t for t in agent.discoverable if t.condition is None or evaluate_condition(t.condition, payload, deps.context)
    ]
    failure: Exception | None = None
    async with mcp_tools(agent.mcp_servers, payload, deps.context) as served:  # connected for this run
        for tool in served:
            if tool.discoverable:
                hidden.append(tool)
            else:
                tools.setdefault(tool.name, tool)  # the agent's own tool keeps its name
        discovery = Discovery([t for t in hidden if t.name not in tools]) if hidden else None
        if discovery is not None:
            tools.setdefault(SEARCH_TOOLS, discovery.tool())
        try:
            return await _converse(deps, state, agent, payload, output_schema, tools, discovery)
        except Exception as exc:  # raised after the servers are closed: their task groups would wrap it
            failure = exc
    raise failure


async def _converse(
    deps: RunDeps,
    state: RunState,
    agent: LLMAgentSpec,
    payload: Mapping[str, Any],
    output_schema: Mapping[str, Any] | None,
    tools: dict[str, Any],
    discovery: Discovery | None = None,
) -> Any:
    tool_schemas = [dict(t.schema) for t in tools.values()] or None
    system = render_system_prompt(agent.system_prompt, deps.context)
    if output_schema is not None:
        system += schema_instruction(output_schema)
    state.messages.extend(initial_messages(system, payload, deps.history))
    options = agent.retry_options
    policy = deps.policy(options.attempts, options.initial_delay, options.max_delay)
    budget = budget_for(agent, deps.outer_budget)

    last_prompt_tokens = 0
    while True:
        if over_budget(agent, last_prompt_tokens):
            await compress(deps, state, agent)
        before = state.usage.prompt_tokens
        try:
            response = await call_model(
                deps,
                state,
                model=agent.model,
                fallback_model=agent.fallback_model,
                policy=policy,
                attempt_timeout=options.attempt_timeout,
                temperature=agent.temperature,
                tools=tool_schemas,
                budget=budget,
                reasoning_effort=reasoning_effort_of(agent.reasoning_effort),
                reasoning_budget=agent.reasoning_budget,
            )
        except ContextLengthError:
            if not await compress(deps, state, agent):  # nothing (more) to compress: the run fails as it would
                raise
            continue
        last_prompt_tokens = state.usage.prompt_tokens - before
        state.messages.append(response.assistant_message())
        if response.text:
            state.last_text = response.text
        if response.tool_calls:
            outcomes = await _run_tool_calls(deps, state, agent, tools, response.tool_calls)
            state.messages.extend(outcome.message() for outcome in outcomes)
            if discovery is not None and discovery.found.keys() - tools.keys():  # offered from the next call on
                for name, tool in discovery.found.items():
                    tools.setdefault(name, tool)
                tool_schemas = [dict(t.schema) for t in tools.values()]
            continue
        if output_schema is None:
            return response.text or ""
        with deps.tracer.span(SpanKind.OUTPUT_VALIDATION, "output_validation") as span:
            result = validate_answer(response.text, output_schema)
            span.set(valid=result.ok, reask=state.validation_retries_used)
            if result.ok:
                return result.value
            error = result.error or "invalid answer"
            rejected = OutputValidationError(error, last_answer=response.text or "")
            # The rejected text, so a prompt can be debugged from the trace (redacted on export).
            span.set(
                **{
                    SpanAttr.LAST_ANSWER: clip_answer(response.text or ""),
                    SpanAttr.LAST_ANSWER_CHARS: len(response.text or ""),
                }
            )
            if state.validation_retries_used + 1 >= options.attempts:
                raise rejected
            span.fail(rejected)
        state.validation_retries_used += 1
        state.messages.append(reask_message(error))


async def _run_tool_calls(
    deps: RunDeps,
    state: RunState,
    agent: LLMAgentSpec,
    tools: Mapping[str, Any],
    calls: Sequence[ToolCall],
) -> list[ToolOutcome]:
    """The calls of one model message, concurrently; results in the order asked.
    A `StopProcessing` from a tool or hook ends the run once the other calls are done.

    `gather`, not a TaskGroup: a TaskGroup cancels the run's own task when a call raises,
    which the cancel scopes of the run's MCP connections (anyio) would take for theirs."""
    decided = gate_calls(  # calls a human must approve first (raises to park the run)
        agent.approval, tools, calls, llm_step=state.llm_steps, context=deps.context, approvals=deps.approvals
    )
    finished = await asyncio.gather(
        *(
            _already(decided[call.id])
            if call.id in decided
            else deps.tools.call(
                tools,
                call,
                context=deps.context,
                timeout=deps.deadline.cap(agent.tool_timeout) if agent.tool_timeout else None,
                isolation=agent.isolation,
                tracer=deps.tracer,
                hook=deps.tool_hooks.get(agent.name),
            )
            for call in calls
        ),
        return_exceptions=True,
    )
    for item in finished:
        if isinstance(item, BaseException):
            raise item
    outcomes = [item for item in finished if isinstance(item, ToolOutcome)]
    for outcome in outcomes:
        state.usage.tool_calls += 1
        state.tool_results.append(
            {"tool": outcome.call.name, "result": outcome.value}
            if outcome.error is None
            else {"tool": outcome.call.name, "error": outcome.error.message}
        )
    return outcomes


async def _already(outcome: ToolOutcome) -> ToolOutcome:
    return outcome
