"""`SpendFeed`: every worker's results, read from `runs.results` into this worker's ledger.

A plain consumer without a group: it is assigned every partition, so each worker sees
the spend of all of them. At start it seeks each partition to the first record produced
at or after `since` (`offsets_for_times`: the start of the oldest period a limit or the
spike alert needs, e.g. the first of the month) and reads up to the end before the
worker runs anything, so a worker started mid-period knows the period's spend. Then it
follows the topic, with a short fetch wait so that another worker's spend is seen within
tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from app.contracts import RunResult
from app.kafka import LongPollConsumer
from app.observability.spend.kafka_clients import CONNECT_TIMEOUT_S, partitions_of, start_bounded
from app.observability.spend.ledger import SpendLedger

log = logging.getLogger("ferry.spend")


class SpendFeed:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        ledger: SpendLedger,
        *,
        on_change: Callable[[], None],
        fetch_max_wait_ms: int = 20,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        """`on_change`: called after a fetch that counted anything."""
        self.bootstrap = bootstrap
        self.topic = topic
        self.ledger = ledger
        self._on_change = on_change
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._connect_timeout_s = connect_timeout_s
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()
        self.undecodable = 0

    async def start(self, since: datetime, catch_up_timeout: float = 300.0) -> None:
        """Read the results produced since `since`; return once caught up with the topic's end.
        On any failure, stop what was started and raise."""
        tps = await partitions_of(self.bootstrap, self.topic, self._connect_timeout_s)
        consumer = LongPollConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            client_id="ferry-spend",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        await start_bounded(consumer.start, consumer.stop, self.bootstrap, self._connect_timeout_s)
        self._consumer = consumer
        try:
            consumer.assign(tps)
            found = await consumer.offsets_for_times(dict.fromkeys(tps, int(since.timestamp() * 1000)))
            begins = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            older = False
            for tp in tps:
                at = found.get(tp)
                offset = at.offset if at is not None else ends[tp]
                older = older or offset > begins[tp]  # records before `since`: history goes back further
                consumer.seek(tp, offset)
                self._positions[tp] = offset
            if older:
                self.ledger.note_history_before(since.date())
            self._task = asyncio.create_task(self._follow(consumer), name=f"spend feed {self.topic}")
            await self.catch_up(catch_up_timeout)
        except BaseException:
            await self.stop()
            raise

    async def catch_up(self, timeout: float = 60.0) -> None:
        """Return once every result produced before this call is counted."""
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
            with contextlib.suppress(Exception):
                await consumer.stop()
        self._positions.clear()

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=500)
            except KafkaError as exc:
                log.warning("spend feed: fetch failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            counted = False
            for tp, records in batch.items():
                for record in records:
                    counted = self._count(record.value) or counted
                if records:
                    self._positions[tp] = records[-1].offset + 1
            for tp in self._positions:
                with contextlib.suppress(KafkaError, AssertionError, KeyError):  # e.g. no position yet
                    self._positions[tp] = max(self._positions[tp], await consumer.position(tp))
            if counted:
                self._on_change()
            async with self._progress:
                self._progress.notify_all()

    def _count(self, value: bytes | None) -> bool:
        if value is None:  # a tombstone
            return False
        try:
            result = RunResult.model_validate_json(value)
        except (ValidationError, ValueError):
            self.undecodable += 1  # the history projector reports it; here it only costs nothing
            return False
        return self.ledger.add(result)
