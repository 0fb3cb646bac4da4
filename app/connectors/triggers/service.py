"""`Triggers`: the project's cron and object-storage triggers, run by a worker or `ferry connectors run`.

    schedules, s3 polls   fired by one leader among all the processes (`leader.py`)
    s3 events             a consumer group over the notification topics (`s3_events.py`)

Every process that runs connectors runs this; they share the work through their
consumer groups, so a tick or an object starts its run once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from app.connectors.triggers.s3_events import S3EventTrigger, s3_events_group
from app.connectors.triggers.s3_objects import Bucket
from app.connectors.triggers.s3_poll import poll_bucket
from app.connectors.triggers.schedule import run_schedules
from app.contracts import RunRequest
from app.project.connectors import S3ConnectorSpec, ScheduleConnectorSpec
from app.project.project import Project
from app.streams.client import Submitter
from app.streams.leader import TriggerLeader
from app.streams.naming import TopicNames


def trigger_specs(project: Project) -> list[S3ConnectorSpec | ScheduleConnectorSpec]:
    return [s for s in project.connectors.values() if isinstance(s, S3ConnectorSpec | ScheduleConnectorSpec)]


def triggers_group(app_id: str) -> str:
    return f"{app_id}.triggers"


class Triggers:
    def __init__(
        self,
        bootstrap: str,
        project: Project,
        names: TopicNames,
        app_id: str,
        *,
        buckets: dict[str, Bucket] | None = None,
    ) -> None:
        specs = trigger_specs(project)
        self.schedules = [s for s in specs if isinstance(s, ScheduleConnectorSpec)]
        self.polls = [s for s in specs if isinstance(s, S3ConnectorSpec) and s.mode == "poll"]
        events = [s for s in specs if isinstance(s, S3ConnectorSpec) and s.mode == "events"]
        self._buckets = buckets or {}
        self._submitter = Submitter(bootstrap, project, names, linger_ms=5)
        self.leader = (
            TriggerLeader(bootstrap, names.triggers, triggers_group(app_id), self._lead)
            if self.schedules or self.polls
            else None
        )
        self.events = (
            S3EventTrigger(bootstrap, self._submitter, events, group_id=s3_events_group(app_id), buckets=self._buckets)
            if events
            else None
        )

    def describe(self) -> str:
        """One log line: what fires runs here."""
        parts = [f"schedule {s.name} ({s.cron}) runs {s.agent}" for s in self.schedules]
        parts += [f"s3 {s.name} (poll s3://{s.bucket}/{s.prefix}) runs {s.agent}" for s in self.polls]
        if self.events is not None:
            parts += [f"s3 {s.name} (events on {s.events_topic}) runs {s.agent}" for s in self.events.specs]
        return "; ".join(parts)

    async def start(self) -> None:
        await self._submitter.__aenter__()
        try:
            if self.events is not None:
                await self.events.start()
            if self.leader is not None:
                await self.leader.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.leader is not None:
            await self.leader.stop()
        if self.events is not None:
            await self.events.stop()
        await self._submitter.__aexit__(None, None, None)

    async def _submit(self, request: RunRequest) -> None:
        await self._submitter.submit(request)

    async def _lead(self, state: dict[str, Any]) -> None:
        assert self.leader is not None
        loops: list[Any] = []
        if self.schedules:
            loops.append(run_schedules(self.schedules, state, self._submit, self.leader.save))
        for spec in self.polls:
            bucket = self._buckets.get(spec.name) or Bucket(spec)
            loops.append(poll_bucket(spec, bucket, state, self._submit, self.leader.save))
        await asyncio.gather(*loops)


__all__: Sequence[str] = ["Triggers", "trigger_specs", "triggers_group"]
