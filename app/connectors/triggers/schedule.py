"""Cron triggers: which ticks are due, and the loop the trigger leader runs for them.

A tick fires once, as a run whose id derives from the schedule and the tick (`schedule:
<name>:<tick>`), so a tick fired twice (a leader that died between starting the run and
saving the schedule's state) is still one run. A tick found more than `LATE_FIRE_S`
late (no leader at the time: every worker down, a long failover) is missed and follows
the schedule's `missed` policy: `skip`, or `catch_up` (the most recent `max_catch_up`
of them, oldest first). The first leader ever to see a schedule starts from its start:
no tick before it fires.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from app.contracts import RunRequest
from app.contracts.runs import Trigger
from app.project.connectors import ScheduleConnectorSpec

log = logging.getLogger(__name__)

#: A tick this late or less still fires whatever the policy (a failover, a slow start).
LATE_FIRE_S = 60.0
#: The longest the loop sleeps: a clock change or a new leader never waits longer.
MAX_SLEEP_S = 30.0
TRIGGER_SOURCE = "schedule"

Submit = Callable[[RunRequest], Awaitable[None]]
Save = Callable[[str, dict[str, Any]], Awaitable[None]]


def _iter(spec: ScheduleConnectorSpec, start: datetime) -> croniter:
    return croniter(spec.cron, start, second_at_beginning=len(spec.cron.split()) == 6)


def due_ticks(spec: ScheduleConnectorSpec, last: datetime, now: datetime) -> tuple[list[datetime], datetime]:
    """(ticks to fire, the new last tick): the ticks after `last` up to `now`, by policy."""
    ticks: list[datetime] = []
    cursor = _iter(spec, last)
    while (tick := cursor.get_next(datetime)) <= now:
        ticks.append(tick)
        if len(ticks) > spec.max_catch_up + 10_000:  # a schedule left a year: enough to decide
            ticks = ticks[-spec.max_catch_up :]
    if not ticks:
        return [], last
    fresh = [t for t in ticks if (now - t).total_seconds() <= LATE_FIRE_S]
    missed = ticks[: len(ticks) - len(fresh)]
    if missed:
        log.warning(
            "schedule %s: %d tick(s) missed (%s … %s): %s",
            spec.name,
            len(missed),
            missed[0].isoformat(),
            missed[-1].isoformat(),
            "catching up" if spec.missed == "catch_up" else "skipped",
        )
    fire = (missed + fresh)[-spec.max_catch_up :] if spec.missed == "catch_up" else fresh
    return fire, ticks[-1]


def next_tick(spec: ScheduleConnectorSpec, after: datetime) -> datetime:
    tick: datetime = _iter(spec, after).get_next(datetime)
    return tick


def tick_request(spec: ScheduleConnectorSpec, tick: datetime) -> RunRequest:
    stamp = tick.isoformat()
    return RunRequest.new(
        spec.agent,
        {**spec.payload, "_schedule": {"name": spec.name, "tick": stamp}},
        tenant=spec.tenant,
        idempotency_key=f"schedule:{spec.name}:{stamp}",
        trigger=Trigger(source=TRIGGER_SOURCE, metadata={"connector": spec.name, "tick": stamp}),
    )


def state_key(spec: ScheduleConnectorSpec) -> str:
    return f"schedule:{spec.name}"


async def run_schedules(
    specs: Sequence[ScheduleConnectorSpec],
    state: dict[str, Any],
    submit: Submit,
    save: Save,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Fire every schedule's ticks as they fall due, until cancelled (the leader steps down)."""
    last: dict[str, datetime] = {}
    started = now()
    for spec in specs:
        saved = state.get(state_key(spec), {}).get("last_tick")
        last[spec.name] = datetime.fromisoformat(saved) if isinstance(saved, str) else started
    while True:
        current = now()
        for spec in specs:
            fire, newest = due_ticks(spec, last[spec.name], current)
            for tick in fire:
                await submit(tick_request(spec, tick))
                log.info("schedule %s: tick %s started a run of %s", spec.name, tick.isoformat(), spec.agent)
            if newest != last[spec.name]:
                await save(state_key(spec), {"last_tick": newest.isoformat()})
                last[spec.name] = newest
        upcoming = min(next_tick(spec, last[spec.name]) for spec in specs)
        wait = (upcoming - now()).total_seconds()
        await asyncio.sleep(min(MAX_SLEEP_S, max(0.0, wait) + 0.005))
