"""`trigger_agent`: one agent starting another as a run of its own, linked to its parent.

The engine knows nothing of Kafka, so it is given an `AgentTrigger`: in a worker, one
that produces the child's `RunRequest` to the target agent's request topic and reads its
result from `runs.results` (app/streams/agent_trigger.py) — the child is then a run like
any other, on any worker; without a broker (`ferry run`, tests) the engine runs the child
itself (`InProcessTrigger`). Either way the child's trigger is `agent`, its metadata
naming the parent run, its agent and the root of the chain of triggers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol

from app.contracts import RunRequest, RunResult
from app.contracts.errors import ToolError
from app.contracts.runs import Trigger

TRIGGER_SOURCE = "agent"


class AgentTrigger(Protocol):
    async def trigger(self, request: RunRequest, *, wait: bool, timeout: float) -> RunResult | None:
        """Start `request` as a run of its own. With `wait`: its result, or None when it
        has none after `timeout` seconds (the child keeps running). Without: None at once,
        as soon as the request is accepted."""
        ...


def child_input(payload: Any) -> Any:
    """The SDK's payload rules: a dict or list as is, a string that is a JSON object as that
    object, any other string as plain text (a run input that is no object becomes `{"message": ...}`)."""
    if isinstance(payload, str):
        try:
            parsed = json.loads(payload)
        except ValueError:
            return payload
        return parsed if isinstance(parsed, dict) else payload
    return payload


def child_request(parent: RunRequest, agent_name: str, payload: Any) -> RunRequest:
    metadata = parent.trigger.metadata if parent.trigger.source == TRIGGER_SOURCE else {}
    root = metadata.get("root_run_id") or (parent.pipeline.root_run_id if parent.pipeline else parent.run_id)
    return RunRequest.new(
        agent_name,
        child_input(payload),
        tenant=parent.tenant,
        deployment=parent.deployment,
        trigger=Trigger(
            source=TRIGGER_SOURCE,
            metadata={"parent_run_id": parent.run_id, "parent_agent": parent.agent, "root_run_id": root},
        ),
    )


class TriggerTools:
    """`trigger_agent` of one run."""

    def __init__(self, trigger: AgentTrigger, parent: RunRequest, agents: Collection[str]) -> None:
        self._trigger = trigger
        self._parent = parent
        self._agents = agents

    async def trigger_agent(
        self, agent_name: str, payload: Any, wait_for_response: bool = True, timeout_seconds: int = 60
    ) -> dict[str, Any]:
        if agent_name not in self._agents:
            raise ToolError(
                f"no agent {agent_name!r} in this project (known: {', '.join(sorted(self._agents))})", "trigger_agent"
            )
        if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int | float) or timeout_seconds <= 0:
            raise ToolError("timeout_seconds must be a positive number", "trigger_agent")
        request = child_request(self._parent, agent_name, payload)
        result = await self._trigger.trigger(request, wait=bool(wait_for_response), timeout=float(timeout_seconds))
        if not wait_for_response:
            return {"run_id": request.run_id}
        if result is None:
            return {
                "run_id": request.run_id,
                "status": "running",
                "error": f"no result within {timeout_seconds}s (the run goes on)",
            }
        answer: dict[str, Any] = {"run_id": request.run_id, "status": result.status.value, "response": result.output}
        if result.error is not None:
            answer["error"] = result.error.message
        return answer


class InProcessTrigger:
    """Runs the child with the engine's own `run` (no broker: `ferry run`, unit tests).

    Children not waited for run as tasks of this object until done; `aclose` cancels
    the ones still running."""

    def __init__(self, run: Callable[[RunRequest], Awaitable[RunResult]]) -> None:
        self._run = run
        self._tasks: set[asyncio.Task[RunResult]] = set()

    async def trigger(self, request: RunRequest, *, wait: bool, timeout: float) -> RunResult | None:
        task = asyncio.ensure_future(self._run(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if not wait:
            return None
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return task.result() if done else None

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
