"""`TopicTail`: every partition of one topic, read without a consumer group from a
bounded distance before its end, then followed.

The worker keeps two indexes of recent run ids this way (results already produced,
cancels asked for): each needs every partition whatever the group assigned, only the
recent past, and a way to wait until it has read what was produced before a moment
(`catch_up`). Records are handed over as they arrive; the owner decides what they mean.

An owner that reads the topic only to be ready for a later `catch_up` (the result index,
the checkpoints) gains nothing from each record the moment it is written, and a tail
that fetched every few records cost a busy worker ~0.75 fetches per run of its own
(bench/RESULTS.md, "Worker CPU at 200 ms under 2.0 ms"). With `flowing=BATCHED` its
fetches wait for 64 KiB or 1 s while records flow (`FlowingBatch`): under load a fetch
brings dozens of records, a `catch_up` waits at most 1 s for the fetch under way, and a
quiet topic is long-polled, so a record after a quiet spell arrives at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from app.kafka import IDLE_POLL_MS, FlowingBatch, LongPollConsumer
from app.streams.connect import start_client, topic_partitions

log = logging.getLogger(__name__)

#: What a batching tail's fetch waits for while records flow: dozens of results or steps,
#: or a second.
BATCHED = FlowingBatch(min_bytes=64 * 1024, wait_ms=1000)


class TopicTail:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        on_records: Callable[[Sequence[ConsumerRecord[bytes, bytes]]], None],
        *,
        keep: int,
        fetch_max_wait_ms: int,
        flowing: FlowingBatch | None = None,
    ) -> None:
        """`keep`: records read back from the end at start, spread over the partitions;
        `flowing`: what a fetch waits for while records flow (`BATCHED`)."""
        self.bootstrap = bootstrap
        self.topic = topic
        self._on_records = on_records
        self._keep = keep
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._flowing = flowing
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()

    async def start(self) -> None:
        """Seek every partition to its recent past and read up to the end; on any failure,
        stop what was started and raise."""
        tps = await topic_partitions(self.bootstrap, self.topic)
        consumer = LongPollConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            flowing=self._flowing,
            auto_offset_reset="earliest",
        )
        await start_client(consumer.start, consumer.stop, self.bootstrap)
        self._consumer = consumer
        try:
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            begins = await consumer.beginning_offsets(tps)
            per_partition = max(1, self._keep // len(tps))
            for tp in tps:
                start = max(begins[tp], ends[tp] - per_partition)
                consumer.seek(tp, start)
                self._positions[tp] = start
            self._task = asyncio.create_task(self._follow(consumer), name=f"tail of {self.topic}")
            await self.catch_up()
        except BaseException:
            await self.stop()
            raise

    async def catch_up(self, timeout: float = 60.0) -> None:
        """Return once every record produced before this call has been handed over."""
        consumer = self._consumer
        if consumer is None:
            return
        ends = await consumer.end_offsets(list(self._positions))
        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(lambda: all(self._positions[tp] >= end for tp, end in ends.items()))

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

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                # Also how late a `catch_up` sees a position that moved with no record to hand
                # over (transaction markers): the positions are read again after each wait.
                batch = await consumer.getmany(timeout_ms=IDLE_POLL_MS)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: fetch failed; retrying", self.topic)
                await asyncio.sleep(1.0)
                continue
            for tp, records in batch.items():
                if records:
                    self._on_records(records)
                    self._positions[tp] = records[-1].offset + 1
            for tp in self._positions:
                with contextlib.suppress(Exception):  # an unassigned partition has no position
                    self._positions[tp] = max(self._positions[tp], await consumer.position(tp))
            async with self._progress:
                self._progress.notify_all()
