"""Scheduled runs (`trigger_agent_at`): kept on Kafka until due, started once by one leader.

    tool call   the worker produces a `ScheduledRun` to `ferry.triggers`, keyed
                `at:<schedule id>` (acks=all): the call returns once the broker holds it
    every worker  follows the `at:` records of that compacted topic (`ScheduledBook`)
    leader      one process of the `<app-id>.scheduled` group (`TriggerLeader`) produces
                each due run's request to its agent's request topic, then a tombstone for
                its key, so compaction forgets it

Nothing waits in a worker's memory or holds a run slot: a worker that stops loses
nothing, and the next leader (any worker of the app) reads the topic on election and
fires what is due. A leader that dies between the request and the tombstone leaves the
next one to produce the request again, with the same run id (derived from the schedule
id), which workers recognise as a run already queued, running or done. The schedule id
itself derives from the parent run and the tool call, so a call made again schedules
the same key, not a second run.

The records share `ferry.triggers` with the cron and bucket triggers' state (one
compacted partition, the same retention); the `at:` prefix keeps them apart, and the
cron leader, in a group of its own, never looks at them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from pydantic import BaseModel, ConfigDict, ValidationError

from app.contracts import RunRequest
from app.contracts.trace_context import TraceContext
from app.project.project import Project
from app.streams.connect import start_client
from app.streams.leader import TriggerLeader
from app.streams.naming import TopicNames
from app.streams.topic_admin import apply_topics
from app.streams.topic_plan import plan_topic
from app.streams.topic_tail import TopicTail
from app.streams.trace_headers import trace_headers

log = logging.getLogger(__name__)

KEY_PREFIX = "at:"
_READ_ALL = 1 << 62
#: The longest the leader sleeps between looks at the book: a record produced while it
#: sleeps waits at most this long (plus the tail's fetch) past its due time.
MAX_SLEEP_S = 0.5


class ScheduledRun(BaseModel):
    """One child run waiting for its time: the request as its topic will receive it."""

    model_config = ConfigDict(frozen=True)

    key: str  # `at:<schedule id>`, the record's key
    due_at: datetime
    topic: str  # the agent's request topic
    record_key: str  # the request record's key (the concurrency key value, else the run id)
    request: RunRequest
    traceparent: str | None = None  # the scheduling tool call's span: the child's run span continues it
    tracestate: str | None = None

    def trace(self) -> TraceContext | None:
        return TraceContext.parse(self.traceparent, self.tracestate)


def scheduled_run(
    request: RunRequest, due_at: datetime, *, topic: str, record_key: str, trace: TraceContext | None
) -> ScheduledRun:
    key = request.idempotency_key or request.run_id
    return ScheduledRun(
        key=key if key.startswith(KEY_PREFIX) else KEY_PREFIX + key,
        due_at=due_at,
        topic=topic,
        record_key=record_key,
        request=request,
        traceparent=trace.traceparent if trace is not None else None,
        tracestate=trace.tracestate if trace is not None else None,
    )


class ScheduledBook:
    """Every scheduled run not fired yet, followed live from `ferry.triggers`."""

    def __init__(self, bootstrap: str, names: TopicNames) -> None:
        self.runs: dict[str, ScheduledRun] = {}
        self._tail = TopicTail(bootstrap, names.triggers, self._take, keep=_READ_ALL, fetch_max_wait_ms=500)

    async def start(self) -> None:
        await self._tail.start()

    async def stop(self) -> None:
        await self._tail.stop()

    async def catch_up(self) -> None:
        await self._tail.catch_up()

    def due(self, now: datetime) -> list[ScheduledRun]:
        return sorted((r for r in self.runs.values() if r.due_at <= now), key=lambda r: r.due_at)

    def next_due(self) -> datetime | None:
        return min((r.due_at for r in self.runs.values()), default=None)

    def _take(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            key = record.key.decode() if record.key else ""
            if not key.startswith(KEY_PREFIX):
                continue  # a cron or bucket trigger's state
            if record.value is None:
                self.runs.pop(key, None)
                continue
            try:
                self.runs[key] = ScheduledRun.model_validate_json(record.value)
            except ValidationError:
                log.warning("scheduled runs: record %r at offset %d is not a scheduled run", key, record.offset)


class ScheduledRuns:
    """What every worker runs for `trigger_agent_at`: the book, and the firing while it leads."""

    def __init__(
        self, bootstrap: str, project: Project, names: TopicNames, app_id: str, *, replication: int | None = None
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = plan_topic(project, names, names.triggers, replication)
        self.book = ScheduledBook(bootstrap, names)
        self.leader = TriggerLeader(bootstrap, names.triggers, scheduled_group(app_id), self._lead)
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        await apply_topics(self._bootstrap, [self._topic])
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", linger_ms=0, max_request_size=8 * 1024 * 1024
        )
        await start_client(producer.start, producer.stop, self._bootstrap)
        self._producer = producer
        try:
            await self.book.start()
            await self.leader.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await self.leader.stop()
        await self.book.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def _lead(self, _: dict[str, Any]) -> None:
        """Fire what is due, until the leader steps down (cancelled)."""
        await self.book.catch_up()  # not fire again what the last leader fired and tombstoned
        while True:
            now = datetime.now(UTC)
            for run in self.book.due(now):
                try:
                    await self._fire(run)
                except Exception as exc:  # a broker hiccup: the run stays in the book, tried again
                    log.warning("scheduled runs: %s not started yet: %s", run.key, exc)
                    break
            upcoming = self.book.next_due()
            wait = MAX_SLEEP_S if upcoming is None else (upcoming - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(min(MAX_SLEEP_S, max(0.01, wait)))

    async def _fire(self, run: ScheduledRun) -> None:
        """The request on its topic, then the tombstone: a crash in between fires it again (same run id)."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("scheduled runs are not started")
        request = run.request.model_copy(update={"created_at": datetime.now(UTC)})  # queued from now on
        await (
            await producer.send(
                run.topic,
                key=run.record_key.encode(),
                value=request.model_dump_json().encode(),
                headers=trace_headers(run.trace()),
            )
        )
        await (await producer.send(self._topic.name, key=run.key.encode(), value=None))
        self.book.runs.pop(run.key, None)
        late = (datetime.now(UTC) - run.due_at).total_seconds()
        log.info(
            "scheduled runs: %s started run %s of %s (%.1fs after due)", run.key, request.run_id, request.agent, late
        )


def scheduled_group(app_id: str) -> str:
    return f"{app_id}.scheduled"
