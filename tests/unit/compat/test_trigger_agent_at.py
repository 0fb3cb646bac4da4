"""trigger_agent_at: when the child is due, its link to the parent, one child per call however often it is made."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.compat.trigger import InProcessTrigger, TriggerTools, due_time
from app.contracts import RunRequest, RunResult, RunStatus
from app.contracts.errors import ToolError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Recorder:
    """An AgentTrigger and AgentScheduler that keeps what it was asked to schedule."""

    def __init__(self) -> None:
        self.scheduled: dict[str, tuple[RunRequest, datetime]] = {}

    async def trigger(self, request: RunRequest, *, wait: bool, timeout: float) -> RunResult | None:
        raise AssertionError("not called by trigger_agent_at")

    async def schedule(self, request: RunRequest, due_at: datetime) -> None:
        self.scheduled[request.run_id] = (request, due_at)  # keyed as the topic is: a repeat replaces


@pytest.mark.parametrize(
    ("delay", "stamp", "due"),
    [
        ({"h": 2, "m": 30}, None, NOW + timedelta(hours=2, minutes=30)),
        ({"d": 1, "s": 0.5}, None, NOW + timedelta(days=1, seconds=0.5)),
        (3, None, NOW + timedelta(seconds=3)),  # Ferry: a number of seconds
        (None, (NOW + timedelta(minutes=5)).timestamp(), NOW + timedelta(minutes=5)),
        (None, "2026-12-01T13:00:00+01:00", NOW),  # Ferry: an ISO time
        (None, (NOW - timedelta(seconds=30)).timestamp(), NOW),  # just past: at once
    ],
)
def test_when_a_child_is_due(delay: Any, stamp: Any, due: datetime) -> None:
    assert due_time(delay, stamp, NOW) == due


@pytest.mark.parametrize(
    ("delay", "stamp", "message"),
    [
        (None, None, "exactly one of delay or unix_timestamp"),
        ({"s": 1}, NOW.timestamp(), "exactly one of delay or unix_timestamp"),
        ({"weeks": 1}, None, "delay takes the keys d, h, m, s"),
        ({}, None, "delay takes the keys d, h, m, s"),
        ({"s": -1}, None, "delay values must be numbers >= 0"),
        ("soon", None, "delay must be"),
        ({"d": 400}, None, "more than 366 days"),
        (None, (NOW - timedelta(hours=1)).timestamp(), "is in the past"),
        (None, "tomorrow", "unix_timestamp must be seconds since the epoch or an ISO 8601 time"),
    ],
)
def test_a_bad_time_is_a_tool_error(delay: Any, stamp: Any, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        due_time(delay, stamp, NOW)


async def test_the_child_is_linked_to_its_parent_and_a_repeated_call_schedules_it_once() -> None:
    parent = RunRequest.new("front-desk", {"q": 1}, tenant="acme")
    recorder = Recorder()
    answer = await TriggerTools(recorder, parent, {"front-desk", "pricer"}).trigger_agent_at(
        "pricer", {"qty": 2}, delay={"s": 3}
    )
    assert answer["status"] == "scheduled"
    request, due = recorder.scheduled[answer["run_id"]]
    assert datetime.fromisoformat(answer["scheduled_at"]) == due
    assert (request.agent, request.tenant, request.input) == ("pricer", "acme", {"qty": 2})
    assert request.trigger.source == "agent"
    assert request.trigger.metadata == {
        "parent_run_id": parent.run_id,
        "parent_agent": "front-desk",
        "root_run_id": parent.run_id,
        "scheduled_at": answer["scheduled_at"],
    }

    # The run redelivered (a new TriggerTools for the same request): the same call, the same child.
    again = await TriggerTools(recorder, parent, {"pricer"}).trigger_agent_at("pricer", {"qty": 2}, delay={"s": 3})
    assert again["run_id"] == answer["run_id"] and len(recorder.scheduled) == 1

    # A second such call within one run is a second child; another parent's call is its own.
    tools = TriggerTools(recorder, parent, {"pricer"})
    first = await tools.trigger_agent_at("pricer", {"qty": 2}, delay={"s": 3})
    second = await tools.trigger_agent_at("pricer", {"qty": 2}, delay={"s": 3})
    other = await TriggerTools(recorder, RunRequest.new("front-desk", {}), {"pricer"}).trigger_agent_at(
        "pricer", {"qty": 2}, delay={"s": 3}
    )
    assert first["run_id"] == answer["run_id"]
    assert len({first["run_id"], second["run_id"], other["run_id"]}) == 3


async def test_an_unknown_agent_or_a_trigger_that_cannot_schedule_is_a_tool_error() -> None:
    parent = RunRequest.new("front-desk", {})
    with pytest.raises(ToolError, match="no agent 'nobody'"):
        await TriggerTools(Recorder(), parent, {"pricer"}).trigger_agent_at("nobody", {}, delay=1)

    class TriggerOnly:
        async def trigger(self, request: RunRequest, *, wait: bool, timeout: float) -> RunResult | None:
            return None

    with pytest.raises(ToolError, match="cannot schedule runs"):
        await TriggerTools(TriggerOnly(), parent, {"pricer"}).trigger_agent_at("pricer", {}, delay=1)


async def test_in_process_the_child_runs_when_due() -> None:
    ran: list[tuple[str, datetime]] = []
    started = asyncio.Event()

    async def run(request: RunRequest) -> RunResult:
        ran.append((request.run_id, datetime.now(UTC)))
        started.set()
        now = datetime.now(UTC)
        return RunResult.for_request(request, RunStatus.COMPLETED, started_at=now, ended_at=now)

    trigger = InProcessTrigger(run)
    parent = RunRequest.new("front-desk", {})
    answer = await TriggerTools(trigger, parent, {"pricer"}).trigger_agent_at("pricer", "go", delay={"s": 0.2})
    due = datetime.fromisoformat(answer["scheduled_at"])
    assert ran == []  # not before it is due
    async with asyncio.timeout(10):
        await started.wait()
    assert ran[0][0] == answer["run_id"] and ran[0][1] >= due
    await trigger.aclose()
