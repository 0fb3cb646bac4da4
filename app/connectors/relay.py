"""`RecordRelay`: consume a topic, hand each partition's batch to a handler, commit after it.

The sink feeder and the inbound connector both turn records of one topic into records of
another. Their handler produces a batch and returns once the broker holds all of it
(acks=all); only then is the batch's offset committed. A handler that fails (the broker
refused) rewinds the partition to the batch's first record and tries again after a
pause, so nothing is skipped: at-least-once, with the duplicates a crash between produce
and commit leaves (the records carry ids that make their consumers idempotent).

    relay = RecordRelay(bootstrap, [topic], group_id=..., client_id=..., handle=produce_all)
    await relay.start()   # ... await relay.stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import BaseModel, ConfigDict, Field

from app.kafka import LongPollConsumer
from app.streams.connect import start_client

log = logging.getLogger(__name__)

Record: TypeAlias = "ConsumerRecord[Any, Any]"
BatchHandler: TypeAlias = Callable[[Sequence[Record]], Awaitable[None]]


class RelaySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    poll_ms: int = Field(default=200, ge=1)
    max_records: int = Field(default=500, ge=1, description="Records fetched (and produced) per round.")
    fetch_max_wait_ms: int = Field(default=50, ge=0, description="aiokafka fetch wait (see PITFALLS).")
    retry_s: float = Field(default=1.0, gt=0, description="Pause before a failed batch is tried again.")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    stop_timeout_s: float = Field(default=10.0, gt=0, description="On stop: time the batch in hand gets.")


class RecordRelay:
    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        *,
        group_id: str,
        client_id: str,
        handle: BatchHandler,
        offset_reset: Literal["earliest", "latest"] = "earliest",
        settings: RelaySettings | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = tuple(topics)
        self.group_id = group_id
        self.client_id = client_id
        self.handle = handle
        self.offset_reset = offset_reset
        self.settings = settings or RelaySettings()
        self.ready = asyncio.Event()  # set once partitions are assigned and their positions known
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Join the group and start relaying; `ServiceUnreachableError` if the broker does not answer."""
        if self._task is not None:
            raise RuntimeError(f"{self.client_id} is already started")
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()
        consumer = LongPollConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset=self.offset_reset,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            metadata_max_age_ms=5000,
        )
        await start_client(consumer.start, consumer.stop, self.bootstrap, timeout=self.settings.connect_timeout_s)
        self._consumer = consumer
        self._task = asyncio.create_task(self._loop(consumer), name=self.client_id)

    async def stop(self) -> None:
        """Let the batch in hand finish (up to `stop_timeout_s`), then leave the group.
        A batch cut short is not committed: the next member relays it again."""
        task, consumer = self._task, self._consumer
        self._task = self._consumer = None
        self._stopping.set()
        if task is not None:
            done, _ = await asyncio.wait([task], timeout=self.settings.stop_timeout_s)
            if not done:
                task.cancel()
                await asyncio.wait([task])
        if consumer is not None:
            try:
                await consumer.stop()
            except KafkaError:
                log.debug("ignored while stopping %s", self.client_id, exc_info=True)

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            try:
                fetched = await consumer.getmany(
                    timeout_ms=self.settings.poll_ms, max_records=self.settings.max_records
                )
                if not self.ready.is_set() and consumer.assignment():
                    for partition in consumer.assignment():
                        await consumer.position(partition)
                    self.ready.set()
            except KafkaError as exc:
                log.warning("%s: fetch failed (%s); retrying", self.client_id, exc)
                await self._pause(self.settings.retry_s)
                continue
            for partition, records in fetched.items():
                if records and await self._relay(consumer, partition, records):
                    await self._commit(consumer, partition, records[-1].offset + 1)

    async def _relay(self, consumer: AIOKafkaConsumer, partition: TopicPartition, records: list[Record]) -> bool:
        try:
            await self.handle(records)
        except Exception as exc:  # the broker refused, or a bug: keep the records, try again later
            if isinstance(exc, KafkaError):
                log.warning("%s: producing failed (%s); trying again", self.client_id, exc)
            else:
                log.exception("%s: a batch of %s failed; trying again", self.client_id, partition.topic)
            consumer.seek(partition, records[0].offset)
            await self._pause(self.settings.retry_s)
            return False
        return True

    async def _commit(self, consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({partition: offset})
        except CommitFailedError:
            log.info("%s: offsets not committed after a rebalance; those records will be relayed again", self.client_id)
        except KafkaError as exc:
            log.warning("%s: commit failed (%s); some records may be relayed again", self.client_id, exc)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
