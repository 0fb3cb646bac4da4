"""`trigger_agent`: one agent starting another as a run of its own, linked to its parent.

The engine knows nothing of Kafka, so it is given an `AgentTrigger`: in a worker, one
that produces the child's `RunRequest` to the target agent's request topic and reads its
result from `runs.results` (app/streams/agent_trigger.py) — the child is then a run like
any other, on any worker; without a broker (`ferry run`, tests) the engine runs the child
itself (`InProcessTrigger`). Either way the child's trigger is `agent`, its metadata
naming the parent run, its agent and the root of the chain of triggers.

`trigger_agent_at` hands the child's request, with when it is due, to the trigger's
`schedule` (an `AgentScheduler`): a worker's puts it on Kafka for the one process that
fires scheduled runs (app/streams/scheduled.py), so it survives a restart. The child's
run id derives from the parent run, the call's arguments and their occurrence in the
run: a call made again (a run resumed or redelivered) schedules the same child, once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class AgentScheduler(Protocol):
    async def schedule(self, request: RunRequest, due_at: datetime) -> None:
        """Start `request` as a run of its own at `due_at` (UTC); returns once that is
        recorded where a restart does not lose it."""
        ...


#: The furthest ahead a run may be scheduled; past it the call is refused (a model's typo).
MAX_SCHEDULE_AHEAD = timedelta(days=366)
#: A timestamp this far in the past still fires (at once); an older one is refused.
PAST_GRACE = timedelta(seconds=60)
_DELAY_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def due_time(delay: Any, unix_timestamp: Any, now: datetime) -> datetime:
    """When a scheduled child is due: the SDK's `delay` ({d, h, m, s}; Ferry also takes a
    number of seconds) or `unix_timestamp` (Ferry also takes an ISO 8601 string), exactly one."""
    name = "trigger_agent_at"
    if (delay is None) == (unix_timestamp is None):
        raise ToolError("give exactly one of delay or unix_timestamp", name)
    if delay is not None:
        if isinstance(delay, dict):
            unknown = sorted(set(delay) - set(_DELAY_UNITS))
            if unknown or not delay:
                raise ToolError(f"delay takes the keys d, h, m, s (got {sorted(delay)})", name)
            parts = list(delay.values())
            if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in parts):
                raise ToolError("delay values must be numbers >= 0", name)
            seconds = sum(float(v) * _DELAY_UNITS[k] for k, v in delay.items())
        elif isinstance(delay, int | float) and not isinstance(delay, bool) and delay >= 0:
            seconds = float(delay)
        else:
            raise ToolError('delay must be {"d", "h", "m", "s"} or a number of seconds >= 0', name)
        if not math.isfinite(seconds) or seconds > MAX_SCHEDULE_AHEAD.total_seconds():
            raise ToolError(f"delay is more than {MAX_SCHEDULE_AHEAD.days} days", name)
        return now + timedelta(seconds=seconds)
    due = _timestamp(unix_timestamp)
    if due < now - PAST_GRACE:
        raise ToolError(f"unix_timestamp {due.isoformat()} is in the past", name)
    if due > now + MAX_SCHEDULE_AHEAD:
        raise ToolError(f"unix_timestamp is more than {MAX_SCHEDULE_AHEAD.days} days ahead", name)
    return max(due, now)


def _timestamp(value: Any) -> datetime:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise ToolError(
        f"unix_timestamp must be seconds since the epoch or an ISO 8601 time (got {value!r})", "trigger_agent_at"
    )


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


def child_request(
    parent: RunRequest, agent_name: str, payload: Any, *, idempotency_key: str | None = None, **metadata: Any
) -> RunRequest:
    """`idempotency_key`: the child's run id derives from it (a scheduled child's does);
    `metadata`: more of the trigger's metadata (`scheduled_at`)."""
    inherited = parent.trigger.metadata if parent.trigger.source == TRIGGER_SOURCE else {}
    root = inherited.get("root_run_id") or (parent.pipeline.root_run_id if parent.pipeline else parent.run_id)
    return RunRequest.new(
        agent_name,
        child_input(payload),
        tenant=parent.tenant,
        deployment=parent.deployment,
        idempotency_key=idempotency_key,
        trigger=Trigger(
            source=TRIGGER_SOURCE,
            metadata={"parent_run_id": parent.run_id, "parent_agent": parent.agent, "root_run_id": root, **metadata},
        ),
    )


def schedule_id(parent_run_id: str, call: Any, occurrence: int) -> str:
    """The same for the same call of the same run (its arguments, and which such call it is)."""
    text = json.dumps([parent_run_id, call, occurrence], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class TriggerTools:
    """`trigger_agent` of one run."""

    def __init__(self, trigger: AgentTrigger, parent: RunRequest, agents: Collection[str]) -> None:
        self._trigger = trigger
        self._parent = parent
        self._agents = agents
        self._calls: Counter[str] = Counter()  # trigger_agent_at calls of this run, by their arguments

    def _check_agent(self, agent_name: str, tool: str) -> None:
        if agent_name not in self._agents:
            raise ToolError(f"no agent {agent_name!r} in this project (known: {', '.join(sorted(self._agents))})", tool)

    async def trigger_agent(
        self, agent_name: str, payload: Any, wait_for_response: bool = True, timeout_seconds: int = 60
    ) -> dict[str, Any]:
        self._check_agent(agent_name, "trigger_agent")
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

    async def trigger_agent_at(
        self, agent_name: str, payload: Any, delay: Any = None, unix_timestamp: Any = None
    ) -> dict[str, Any]:
        self._check_agent(agent_name, "trigger_agent_at")
        if not isinstance(self._trigger, AgentScheduler):
            raise ToolError("this Ferry process cannot schedule runs — no agent was scheduled", "trigger_agent_at")
        due = due_time(delay, unix_timestamp, datetime.now(UTC))
        call = json.dumps([agent_name, payload, delay, unix_timestamp], sort_keys=True, default=str)
        self._calls[call] += 1
        key = f"at:{schedule_id(self._parent.run_id, call, self._calls[call])}"
        request = child_request(self._parent, agent_name, payload, idempotency_key=key, scheduled_at=due.isoformat())
        await self._trigger.schedule(request, due)
        return {"run_id": request.run_id, "scheduled_at": due.isoformat(), "status": "scheduled"}


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

    async def schedule(self, request: RunRequest, due_at: datetime) -> None:
        """Runs the child when due, if this process still runs then (nothing survives it)."""

        async def later() -> RunResult:
            await asyncio.sleep(max(0.0, (due_at - datetime.now(UTC)).total_seconds()))
            return await self._run(request)

        task = asyncio.ensure_future(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
