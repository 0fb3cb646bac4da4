"""Run-level retries later: a run failed by an outage is tried again after a delay, on a topic.

    run fails, retryable category (rate_limit, llm_timeout, llm_unavailable),
    attempt n ≤ len(retry_delays)
        └─► runs.retry.<delay>s   RetryRecord {topic, key, request (attempt n+1), due_at}
              (no result, the input acked: no slot, no offset held while it waits)
                 └─► RetryForwarder: waits until due, produces the request back on its
                     topic (the agent's request or stage topic), then commits
                         └─► the run again: same run id, `trigger.metadata.attempt` n+1,
                             the agent's cap as for any run, its completed steps replayed
                             from its checkpoints (they were not tombstoned: no result)

Only after the last delay does the run end failed (and go to the failed-runs topic when
the agent keeps them). Delays come from ferry.yaml `durability.agents.<name>.retry_delays`
(seconds); each distinct delay is one topic, read by one consumer (consumer group
`<app id>.retry.<delay>s`: one of the workers), so a record waiting an hour never holds back one due in a minute.
Records of one topic are due in the order written (one delay), so waiting for the head
of a partition is waiting for the next due record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.contracts import RunRequest
from app.contracts.errors import ErrorCategory
from app.contracts.runs import utc_now
from app.kafka import LongPollConsumer
from app.streams.connect import start_client
from app.streams.naming import TopicNames
from app.streams.topic_admin import apply_topics
from app.streams.topic_plan import PlannedTopic

log = logging.getLogger(__name__)

ATTEMPT = "attempt"  # trigger.metadata key: which try of the run this is (1 = the first)
RETRY_RETENTION_MS = 7 * 24 * 3600 * 1000


def retry_topic(names: TopicNames, delay: float) -> str:
    return f"{names.prefix}runs.retry.{delay:g}s"


def retry_plan(names: TopicNames, delay: float, replication: int) -> PlannedTopic:
    return PlannedTopic(
        name=retry_topic(names, delay),
        partitions=1,
        replication=replication,
        configs={"cleanup.policy": "delete", "retention.ms": str(RETRY_RETENTION_MS)},
        cleanup_policy="delete",
    )


class RetryRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    topic: str  # where the request goes back to
    key: str | None  # its record key there (the concurrency key, else none: the run id)
    request: RunRequest  # with trigger.metadata.attempt already the next one
    category: ErrorCategory  # why the last try failed
    message: str
    due_at: datetime
    written_at: datetime = Field(default_factory=utc_now)


def attempt_of(request: RunRequest) -> int:
    value = request.trigger.metadata.get(ATTEMPT, 1)
    return value if isinstance(value, int) and value >= 1 else 1


def next_try(
    request: RunRequest, delays: tuple[float, ...], category: ErrorCategory, message: str, topic: str, key: str | None
) -> tuple[float, RetryRecord] | None:
    """The delay and record of the run's next try, or None when its tries are spent."""
    attempt = attempt_of(request)
    if attempt > len(delays):
        return None
    delay = delays[attempt - 1]
    metadata = {**request.trigger.metadata, ATTEMPT: attempt + 1, "last_error": category.value}
    again = request.model_copy(update={"trigger": request.trigger.model_copy(update={"metadata": metadata})})
    due = datetime.now(UTC) + timedelta(seconds=delay)
    return delay, RetryRecord(topic=topic, key=key, request=again, category=category, message=message, due_at=due)


class RetryForwarder:
    """One delay topic: records back to their topics when due. A worker runs one per delay."""

    def __init__(
        self, bootstrap: str, names: TopicNames, delay: float, *, group_id: str, replication: int | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.delay = delay
        self.topic = retry_topic(names, delay)
        self._names = names
        self._group_id = group_id
        self._replication = replication or 1
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self.forwarded = 0

    async def start(self) -> None:
        await apply_topics(self.bootstrap, [retry_plan(self._names, self.delay, self._replication)])
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await start_client(producer.start, producer.stop, self.bootstrap)
        self._producer = producer
        consumer = LongPollConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await start_client(consumer.start, consumer.stop, self.bootstrap)
        except BaseException:
            await producer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._forward(consumer, producer), name=f"retries of {self.topic}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in (self._consumer, self._producer):
            if client is not None:
                await client.stop()
        self._consumer = self._producer = None

    async def _forward(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("%s: fetch failed; retrying", self.topic, exc_info=True)
                await asyncio.sleep(1.0)
                continue
            for tp, records in batch.items():
                for record in records:
                    await self._one(consumer, producer, tp, record.offset, record.value)

    async def _one(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        offset: int,
        value: bytes | None,
    ) -> None:
        try:
            retry = RetryRecord.model_validate_json(value or b"")
        except ValidationError:
            log.warning("%s[%d]@%d: not a retry record; skipped", tp.topic, tp.partition, offset)
        else:
            wait = (retry.due_at - datetime.now(UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)  # no slot held: the run is not in any lane while it waits
            key = (retry.key or retry.request.run_id).encode()
            await producer.send_and_wait(retry.topic, retry.request.model_dump_json().encode(), key=key)
            self.forwarded += 1
            log.info("run %s: try %s sent back to %s", retry.request.run_id, attempt_of(retry.request), retry.topic)
        await consumer.commit({tp: offset + 1})


def retry_forwarders(
    delays: tuple[float, ...], bootstrap: str, names: TopicNames, app_id: str, replication: int | None = None
) -> list[RetryForwarder]:
    return [
        RetryForwarder(bootstrap, names, delay, group_id=f"{app_id}.retry.{delay:g}s", replication=replication)
        for delay in delays
    ]
