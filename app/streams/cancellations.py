"""Cancel requests: a compacted topic every worker reads, so any worker can stop any run.

The API and `ferry cancel` never reach a worker directly (Kafka is the system of
record): they produce a `CancelRequest` keyed by run id on `runs.cancellations`. Each
worker reads every partition of that topic with no consumer group (a cancel concerns
whichever worker holds the run, queued or running) from `capacity / partitions`
records before the end, and keeps the most recent `capacity` run ids: a request that
is read after its cancel (a redelivery, a run still queued behind others) is still
recognised. Each id read is handed to `on_cancel` at once, which stops the run if it is
running here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.streams.connect import start_client, topic_partitions

log = logging.getLogger(__name__)


class CancelRequest(BaseModel):
    """One cancel, as produced on `runs.cancellations` (key: the run id)."""

    model_config = ConfigDict(extra="ignore")

    schema_version: int = 1
    run_id: str
    tenant: str | None = None  # who asked, when known (the API checked it owns the run)
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str = "cli"


class CancellationFeed:
    """The run ids cancelled recently, fed by `runs.cancellations`; `run_id in feed`."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        on_cancel: Callable[[str], None] | None = None,
        capacity: int = 10_000,
        # A fetch returns as soon as a cancel arrives (the topic has one partition), so a
        # long wait costs no latency, only fewer idle polls.
        fetch_max_wait_ms: int = 500,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self.on_cancel = on_cancel
        self.capacity = capacity
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, run_id: str) -> None:
        """Remember `run_id` as cancelled and tell `on_cancel` (once per id kept)."""
        if run_id in self._ids:
            return
        self._ids[run_id] = None
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        if self.on_cancel is not None:
            try:
                self.on_cancel(run_id)
            except Exception:
                log.exception("cancel of run %s failed", run_id)

    async def start(self) -> None:
        """Assign every partition at its recent past; on any failure stop what was started and raise."""
        tps = await topic_partitions(self._bootstrap, self._topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            auto_offset_reset="earliest",
        )
        await start_client(consumer.start, consumer.stop, self._bootstrap)
        self._consumer = consumer
        try:
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            begins = await consumer.beginning_offsets(tps)
            per_partition = max(1, self.capacity // len(tps))
            for tp in tps:
                consumer.seek(tp, max(begins[tp], ends[tp] - per_partition))
            await self._read_to(ends)
            self._task = asyncio.create_task(self._follow(), name=f"cancellations {self._topic}")
        except BaseException:
            await self.stop()
            raise

    async def _read_to(self, ends: dict[TopicPartition, int], timeout: float = 60.0) -> None:
        """Read up to `ends` before any run starts: a cancel from before a restart still holds."""
        assert self._consumer is not None
        async with asyncio.timeout(timeout):
            for tp, end in ends.items():
                while await self._consumer.position(tp) < end:
                    self._take(await self._consumer.getmany(tp, timeout_ms=200))

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=500)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cancellations: fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            self._take(batch)

    def _take(self, batch: dict[TopicPartition, list[object]]) -> None:
        for records in batch.values():
            for record in records:
                value: bytes | None = getattr(record, "value", None)
                if value is None:
                    continue
                try:
                    self.add(CancelRequest.model_validate_json(value).run_id)
                except ValidationError:
                    log.warning("cancellations: ignored a record that is not a cancel request")

    async def stop(self) -> None:
        task, self._task = self._task, None
        consumer, self._consumer = self._consumer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if consumer is not None:
            await consumer.stop()
