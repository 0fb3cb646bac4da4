"""Which run ids already have a result: how a redelivered request is recognised and skipped.

Kafka redelivers a request whose offset was not committed: after a crash between
producing the result and committing, or after a rebalance. Results are keyed by
run_id on `runs.results`, so the worker keeps a bounded set (the most recent
`capacity` ids, FIFO-evicted) fed by a consumer of that topic that starts
`capacity / partitions` records before the end of each partition, and adds its own
results as soon as they are produced.

A result produced by another worker just before a rebalance must be seen before the
redelivered request is judged: `catch_up()` waits until the index has read
`runs.results` up to the end offsets of the moment it is called (the worker calls it
on every assignment, before running anything).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.streams.connect import start_client, topic_partitions

log = logging.getLogger(__name__)


class ResultIndex:
    def __init__(self, bootstrap: str, topic: str, *, capacity: int = 200_000, fetch_max_wait_ms: int = 500) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self.capacity = capacity
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()

    def __contains__(self, run_id: str) -> bool:
        return run_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, run_id: str) -> None:
        self._ids[run_id] = None
        self._ids.move_to_end(run_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    async def start(self) -> None:
        """Read the last `capacity` results; on any failure, stop what was started and raise."""
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
                start = max(begins[tp], ends[tp] - per_partition)
                consumer.seek(tp, start)
                self._positions[tp] = start
            self._task = asyncio.create_task(self._follow(), name=f"result index {self._topic}")
            await self.catch_up()
        except BaseException:
            await self.stop()
            raise

    async def catch_up(self, timeout: float = 60.0) -> None:
        """Return once every result produced before this call is in the index."""
        if self._consumer is None:
            return
        ends = await self._consumer.end_offsets(list(self._positions))
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(lambda: all(self._positions[tp] >= end for tp, end in ends.items()))

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=200)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("result index: fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for tp, records in batch.items():
                for record in records:
                    if record.key is not None:
                        self.add(record.key.decode("utf-8", "replace"))
                if records:
                    self._positions[tp] = records[-1].offset + 1
            for tp in self._positions:
                with contextlib.suppress(Exception):  # an unassigned partition has no position
                    self._positions[tp] = max(self._positions[tp], await self._consumer.position(tp))
            async with self._progress:
                self._progress.notify_all()

    async def stop(self) -> None:
        task, self._task = self._task, None
        consumer, self._consumer = self._consumer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if consumer is not None:
            await consumer.stop()
        self._positions.clear()
