"""`expected_child_agents`: the runs an agent started with `trigger_agent`, captured and checked.

A test run's engine gets a `RecordingTrigger` as its `AgentTrigger`: the child runs in
the same engine, as `InProcessTrigger` runs it, and the trigger keeps each child (agent,
run id, parent, whether it was waited for, its result). The children's tool calls are
told apart from the parent's by the run id in their context.

For each agent named under `expected_child_agents` (Connic's `ChildAgentExpectation`):

- it must have been triggered (`expected_triggered: N`: at least N times);
- `expected_result`, `expected_tool_calls`, `expected_tool_call_order` and
  `expected_no_tool_calls` need a child run that was waited for
  (`wait_for_response=True`), and hold when at least one such run satisfies them all;
- a nested `expected_child_agents` applies to the children of that run, to any depth.

A child's run id is random, and it reaches the parent's model in the tool's answer:
`mask` replaces each child's id by `<child run N>` (N in trigger order) in what a
cassette stores and compares, so a replay is not failed by a fresh id.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.agent_tests.assertions import RunObservation, run_failures
from app.agent_tests.tool_doubles import ToolCallRecord
from app.compat.trigger import InProcessTrigger
from app.contracts import RunRequest, RunResult


@dataclass
class ChildRun:
    agent: str
    run_id: str
    parent_run_id: str | None
    waited: bool
    input: dict[str, Any]
    result: RunResult | None = None


@dataclass
class RecordingTrigger:
    """An `AgentTrigger` that runs children in-process and keeps what they did."""

    run: Callable[[RunRequest], Awaitable[RunResult]]
    children: list[ChildRun] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._inner = InProcessTrigger(self.run)

    async def trigger(self, request: RunRequest, *, wait: bool, timeout: float) -> RunResult | None:
        parent = request.trigger.metadata.get("parent_run_id")
        child = ChildRun(
            agent=request.agent,
            run_id=request.run_id,
            parent_run_id=str(parent) if parent is not None else None,
            waited=wait,
            input=dict(request.input),
        )
        self.children.append(child)
        child.result = await self._inner.trigger(request, wait=wait, timeout=timeout)
        return child.result

    async def aclose(self) -> None:
        await self._inner.aclose()

    def mask(self, data: dict[str, Any]) -> dict[str, Any]:
        """`data` with every child run id replaced by `<child run N>`."""
        if not self.children:
            return data
        text = json.dumps(data, ensure_ascii=False)
        for number, child in enumerate(self.children, start=1):
            text = text.replace(child.run_id, f"<child run {number}>")
        masked: dict[str, Any] = json.loads(text)
        return masked


def child_failures(
    expectations: Mapping[str, Any] | None,
    parent_run_id: str,
    children: Sequence[ChildRun],
    calls: Sequence[ToolCallRecord],
    context: Mapping[str, Any],
) -> list[str]:
    """Every `expected_child_agents` expectation of the run `parent_run_id` that does not hold."""
    failures: list[str] = []
    for agent, expected in (expectations or {}).items():
        mine = [c for c in children if c.agent == agent and c.parent_run_id == parent_run_id]
        failures += [
            f"child {agent}: {failure}" for failure in _agent_failures(expected, mine, children, calls, context)
        ]
    return failures


def _agent_failures(
    expected: Mapping[str, Any],
    runs: list[ChildRun],
    children: Sequence[ChildRun],
    calls: Sequence[ToolCallRecord],
    context: Mapping[str, Any],
) -> list[str]:
    if not runs:
        return ["was never triggered"]
    wanted = expected.get("expected_triggered")
    if wanted is not None and len(runs) < int(wanted):
        return [f"triggered {len(runs)} time(s), expected at least {wanted}"]
    deeper = any(
        expected.get(key)
        for key in (
            "expected_result",
            "expected_tool_calls",
            "expected_tool_call_order",
            "expected_no_tool_calls",
            "expected_child_agents",
        )
    )
    if not deeper:
        return []
    waited = [run for run in runs if run.waited and run.result is not None]
    if not waited:
        return ["its output and tool calls can only be checked on a run triggered with wait_for_response=True"]
    first: list[str] = []
    for run in waited:
        found = _run_failures(expected, run, children, calls, context)
        if not found:
            return []
        first = first or found
    return first


def _run_failures(
    expected: Mapping[str, Any],
    run: ChildRun,
    children: Sequence[ChildRun],
    calls: Sequence[ToolCallRecord],
    context: Mapping[str, Any],
) -> list[str]:
    assert run.result is not None
    error = run.result.error.message if run.result.error else None
    observed = RunObservation(
        status=run.result.status.value,
        output=run.result.output,
        error=error,
        input=run.input,
        calls=[call for call in calls if call.run_id == run.run_id],
        context=context,
    )
    return [
        *run_failures(observed, expected),
        *child_failures(expected.get("expected_child_agents"), run.run_id, children, calls, context),
    ]
