"""`AlertPublisher`: due spend alerts → `ferry.alerts` and the log, each alert once.

Every worker keeps the same ledger, so every worker could judge an alert due; sending
only when an alert's id is not yet on the topic still lets two workers send it in the
same instant. So the sender of an alert is elected by Kafka: each worker's publisher is
a member of one consumer group on `ferry.alerts` (`<app-id>.spend-alerts`), and the
alert `a` is sent only by the member that owns partition `crc32(a.alert_id) % n` (with
the default single partition: by one worker). Ownership starts only once the owner has
read its partitions to the end offsets of the moment they were assigned, so it knows
every alert sent before; a member losing a partition finishes the send in hand before
the rebalance goes on (Kafka calls every member's revocation before any assignment).

Left to chance: a member that stops polling for longer than the group's session
timeout (a frozen process) is replaced while it may still send one alert it had judged
due, which the next owner may judge again. Consumers may drop a record whose key they
have seen: the key is the alert id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from app.contracts.alerts import SpendAlert
from app.kafka import LongPollConsumer
from app.observability.spend.alerts import AlertRules
from app.observability.spend.kafka_clients import CONNECT_TIMEOUT_S, partitions_of, start_bounded

log = logging.getLogger("ferry.spend")

#: Alerts are judged again at least this often (a send that failed is retried then).
JUDGE_INTERVAL_S = 30.0


def partition_for(alert_id: str, partitions: int) -> int:
    """The partition an alert goes to, the same on every worker (Kafka's own partitioner
    is not part of any API a second client library would share)."""
    return zlib.crc32(alert_id.encode()) % partitions


class AlertPublisher(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group_id: str,
        rules: AlertRules,
        *,
        now: Callable[[], datetime],
        fetch_max_wait_ms: int = 100,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        self.rules = rules
        self._now = now
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._connect_timeout_s = connect_timeout_s
        self.sent: set[str] = set()  # alert ids on the topic, read or sent by this worker
        self.published: list[SpendAlert] = []  # what this worker sent
        self._partitions = 1
        self._owned: set[int] = set()
        self._catching_up: dict[TopicPartition, int] = {}  # assigned, not yet read to this offset
        self._lock = asyncio.Lock()  # held while judging and sending; a revocation waits for it
        self._wake = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def owned(self) -> frozenset[int]:
        """The partitions whose alerts this worker sends now."""
        return frozenset(self._owned)

    def nudge(self) -> None:
        """The spend changed: judge the alerts again soon."""
        self._wake.set()

    async def start(self) -> None:
        """Start the producer and join the group (the assignment comes later, in the
        background: alerts wait for it, runs do not)."""
        self._partitions = len(await partitions_of(self.bootstrap, self.topic, self._connect_timeout_s))
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", client_id="ferry-spend-alerts")
        await start_bounded(producer.start, producer.stop, self.bootstrap, self._connect_timeout_s)
        self._producer = producer
        try:
            consumer = LongPollConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                client_id="ferry-spend-alerts",
                enable_auto_commit=False,  # never commits: each owner reads the whole topic
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self._fetch_max_wait_ms,
            )
            await start_bounded(consumer.start, consumer.stop, self.bootstrap, self._connect_timeout_s)
            self._consumer = consumer
            consumer.subscribe([self.topic], listener=self)
            self._tasks = [
                asyncio.create_task(self._read(consumer), name="spend alerts reader"),
                asyncio.create_task(self._judge_loop(), name="spend alerts judge"),
            ]
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Finish the send in hand, stop judging, leave the group, flush the producer."""
        async with self._lock:
            self._owned.clear()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    # The group's rebalance callbacks (aiokafka awaits them inside the rebalance).

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:  # a send in hand completes first
            self._owned.clear()
            self._catching_up.clear()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None or not assigned:
            return
        # Owned once read this far (the reader settles it after its next fetch).
        self._catching_up = dict(await consumer.end_offsets(list(assigned)))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=500)
            except KafkaError as exc:
                log.warning("spend alerts: fetch failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            for records in batch.values():
                for record in records:
                    if record.key is not None:
                        self.sent.add(record.key.decode("utf-8", "replace"))
            await self._settle(consumer)

    async def _settle(self, consumer: AIOKafkaConsumer) -> None:
        """Own each assigned partition read up to its end offset at assignment."""
        for tp, end in list(self._catching_up.items()):
            try:
                position = await consumer.position(tp)
            except (KafkaError, AssertionError, KeyError):  # revoked meanwhile, or no position yet
                continue
            if position >= end and self._catching_up.pop(tp, None) is not None:
                self._owned.add(tp.partition)
                self._wake.set()

    async def _judge_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), JUDGE_INTERVAL_S)
            self._wake.clear()
            try:
                await self.judge()
            except Exception:
                log.exception("spend alerts: judging failed; trying again later")

    async def judge(self) -> list[SpendAlert]:
        """Send the due alerts of the partitions owned now; return those sent."""
        sent: list[SpendAlert] = []
        async with self._lock:
            if not self._owned or self._producer is None:
                return sent
            for alert in self.rules.due(self._now(), self.sent):
                partition = partition_for(alert.alert_id, self._partitions)
                if partition not in self._owned:
                    continue
                try:
                    await self._producer.send_and_wait(
                        self.topic,
                        key=alert.alert_id.encode(),
                        value=alert.model_dump_json().encode(),
                        partition=partition,
                    )
                except KafkaError as exc:
                    log.warning("spend alerts: %s not sent (%s); trying again later", alert.alert_id, exc)
                    continue
                self.sent.add(alert.alert_id)
                self.published.append(alert)
                sent.append(alert)
                log.warning("%s", alert.message)
        return sent
