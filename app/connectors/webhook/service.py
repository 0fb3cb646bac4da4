"""`WebhookConnector`: `runs.results` → signed POSTs to each result's destinations.

    async with WebhookConnector(bootstrap, TopicNames(prefix), destinations, settings):
        ...  # every result with a callback URL or a matching webhook connector is delivered

One aiokafka consumer in its own group (`<app-id>.webhooks`), so connectors of one app
share the results' partitions and the workers' groups are untouched. The loop is:

    fetch ─► one task per result ─► each destination: deliver (retries inside)
                                     └─ failed for good ─► webhooks.dlq (acks=all)
          ─► commit, per partition, the offset below the oldest result still in hand

A result's offset is committed only once every destination has it or has its DLQ entry
(at-least-once: a crash re-delivers, under the same delivery id). Results are delivered
concurrently, up to `max_in_flight` (then fetching pauses), each receiver host limited
to `per_destination` attempts at once: a slow receiver holds back commits, never the
deliveries to the others. Start order: producer → deliverer → consumer → loop; a failed
start undoes what it started.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from app.connectors.results import decode_result
from app.connectors.webhook.config import Destination, Destinations, WebhookSettings
from app.connectors.webhook.dead_letters import WebhookDeadLetter
from app.connectors.webhook.delivery import Deliverer, Outcome
from app.connectors.webhook.envelope import envelope
from app.connectors.webhook.offsets import PendingOffsets
from app.connectors.webhook.signing import delivery_id
from app.contracts import RunResult
from app.kafka import FlowingBatch, LongPollConsumer
from app.streams.connect import start_client

log = logging.getLogger(__name__)

_DLQ_RETRY_S = 1.0
#: What a fetch waits for while results keep coming (with `WebhookSettings.flowing_batch_ms`).
FLOWING_BATCH_BYTES = 16 * 1024


class WebhookTopics(Protocol):
    """The topic names the connector uses; `app.streams.TopicNames` is one."""

    @property
    def results(self) -> str: ...

    @property
    def webhooks_dlq(self) -> str: ...


@dataclass
class WebhookStats:
    delivered: int = 0
    dead_lettered: int = 0
    undecodable: int = 0


class DeadLetterSink:
    """Produces DLQ entries, retrying while the broker refuses: an entry is never dropped."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def put(self, entry: WebhookDeadLetter) -> None:
        while True:
            try:
                await self.producer.send_and_wait(
                    self.topic, entry.model_dump_json().encode(), key=entry.delivery_id.encode()
                )
                return
            except KafkaError as exc:
                log.warning("webhooks: DLQ write failed (%s); retrying in %.0f s", exc, _DLQ_RETRY_S)
                await asyncio.sleep(_DLQ_RETRY_S)


async def start_producer(bootstrap: str, settings: WebhookSettings) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", client_id="ferry-webhooks")
    await start_client(producer.start, producer.stop, bootstrap, timeout=settings.connect_timeout_s)
    return producer


async def deliver_or_dead_letter(
    deliverer: Deliverer,
    sink: DeadLetterSink,
    destination: Destination,
    run_id: str,
    body: dict[str, Any],
    *,
    attempts_before: int = 0,
) -> Outcome:
    """Deliver to one destination; a final failure becomes a DLQ entry (then returned)."""
    delivery = delivery_id(run_id, destination.identity)
    try:
        outcome = await deliverer.deliver(destination, body, delivery)
    except Exception as exc:  # a bug must fail this delivery, not stall the partition
        log.exception("webhooks: delivery %s to %s failed unexpectedly", delivery, destination.identity)
        outcome = Outcome(False, 0, f"internal error: {type(exc).__name__}: {exc}")
    if outcome.delivered:
        return outcome
    log.warning("webhooks: run %s to %s failed (%s); sent to the DLQ", run_id, destination.identity, outcome.reason)
    await sink.put(
        WebhookDeadLetter(
            delivery_id=delivery,
            run_id=run_id,
            destination=destination.identity,
            url=destination.url,
            envelope=body,
            reason=outcome.reason,
            attempts=attempts_before + outcome.attempts,
        )
    )
    return outcome


class WebhookConnector:
    def __init__(
        self,
        bootstrap: str,
        topics: WebhookTopics,
        destinations: Destinations,
        settings: WebhookSettings | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.results_topic = topics.results
        self.dlq_topic = topics.webhooks_dlq
        self.destinations = destinations
        self.settings = settings or destinations.settings
        self.stats = WebhookStats()
        self._offsets = PendingOffsets()
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer: LongPollConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._deliverer: Deliverer | None = None
        self._sink: DeadLetterSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> WebhookConnector:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Join the group and start delivering. Raises `ServiceUnreachableError` when the
        broker does not answer; nothing is left running when it raises."""
        if self._task is not None:
            raise RuntimeError("the webhook connector is already started")
        self._stopping = asyncio.Event()
        self._offsets = PendingOffsets()
        producer = await start_producer(self.bootstrap, self.settings)
        deliverer = Deliverer(self.destinations.allowed, self.settings.per_destination)
        deliverer.start()
        consumer = LongPollConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.settings.group_id,
            client_id="ferry-webhooks",
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group delivers every result the topic still holds
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            metadata_max_age_ms=5000,
            flowing=FlowingBatch(FLOWING_BATCH_BYTES, self.settings.flowing_batch_ms)
            if self.settings.flowing_batch_ms
            else None,
        )
        consumer.subscribe([self.results_topic], listener=_CommitOnRevoke(self))
        try:
            await start_client(consumer.start, consumer.stop, self.bootstrap, timeout=self.settings.connect_timeout_s)
        except BaseException:
            await deliverer.close()
            await producer.stop()
            raise
        self._producer, self._deliverer, self._consumer = producer, deliverer, consumer
        self._sink = DeadLetterSink(producer, self.dlq_topic)
        for name in self.destinations.ignored:
            log.warning("webhooks: connector %s does not listen to runs.results; only results are delivered", name)
        self._task = asyncio.create_task(self._consume(consumer), name="ferry-webhooks")

    async def stop(self) -> None:
        """Give deliveries in hand `stop_timeout_s` to finish, commit what is done, leave the group.
        Deliveries cut short are not committed: the next member delivers them (same id)."""
        task, consumer, producer, deliverer = self._task, self._consumer, self._producer, self._deliverer
        self._task = self._consumer = self._producer = self._deliverer = self._sink = None
        self._stopping.set()
        if consumer is not None:
            consumer.stop_waiting()  # a wait for records ends now, not after the poll
        if task is not None:
            await asyncio.wait([task])
        if self._tasks:
            _, unfinished = await asyncio.wait(set(self._tasks), timeout=self.settings.stop_timeout_s)
            for pending in unfinished:
                pending.cancel()
            if unfinished:
                log.info("webhooks: %d deliveries cut short by stop; they will be delivered again", len(unfinished))
                await asyncio.wait(unfinished)
        if consumer is not None:
            await self._commit(consumer)
            await _quietly(consumer.stop())
        if deliverer is not None:
            await deliverer.close()
        if producer is not None:
            await _quietly(producer.stop())

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        last_commit = time.monotonic()
        while not self._stopping.is_set():
            room = self.settings.max_in_flight - self._offsets.in_hand
            assigned = consumer.assignment()
            if room <= 0:
                consumer.pause(*assigned)  # keep polling (the group's liveness) without fetching
            elif consumer.paused():
                consumer.resume(*consumer.paused())
            settled = room == self.settings.max_in_flight and not self._offsets.to_commit()
            wait_ms = self.settings.idle_poll_ms if settled else self.settings.poll_ms
            try:
                fetched = await consumer.getmany(timeout_ms=wait_ms, max_records=max(1, room))
            except KafkaError as exc:
                log.warning("webhooks: fetch failed (%s); retrying", exc)
                await self._pause(1.0)
                continue
            for partition, records in fetched.items():
                for record in records:
                    routed = self._route(partition, record)
                    if routed is None:  # most results: nothing to deliver, no task
                        self._offsets.passed(partition, record.offset)
                        continue
                    token = self._offsets.fetched(partition, record.offset)
                    task = asyncio.create_task(self._deliver(partition, record.offset, token, *routed))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            if time.monotonic() - last_commit >= self.settings.commit_interval_s:
                await self._commit(consumer)
                last_commit = time.monotonic()

    def _route(
        self, partition: TopicPartition, record: ConsumerRecord[Any, Any]
    ) -> tuple[RunResult, list[Destination]] | None:
        """The result and where it goes; None when it goes nowhere or is not a result."""
        result = decode_result(record, self.stats, "webhooks")
        if result is None:
            return None
        destinations = self.destinations.for_result(result)
        return (result, destinations) if destinations else None

    async def _deliver(
        self, partition: TopicPartition, offset: int, token: int, result: RunResult, destinations: list[Destination]
    ) -> None:
        deliverer, sink = self._deliverer, self._sink
        if deliverer is None or sink is None:
            return
        body = envelope(result)
        outcomes = await asyncio.gather(
            *(deliver_or_dead_letter(deliverer, sink, d, result.run_id, body) for d in destinations)
        )
        for outcome in outcomes:
            if outcome.delivered:
                self.stats.delivered += 1
            else:
                self.stats.dead_lettered += 1
        self._offsets.done(partition, offset, token)

    async def _commit(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition] | None = None) -> None:
        positions = self._offsets.to_commit(partitions)
        if not positions:
            return
        try:
            await consumer.commit(dict(positions))
        except CommitFailedError:
            log.info("webhooks: offsets not committed after a rebalance; those results will be delivered again")
        except KafkaError as exc:
            log.warning("webhooks: commit failed (%s); some results may be delivered again", exc)
        else:
            self._offsets.committed(positions)

    async def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is not None:
            await self._commit(consumer, revoked)
        self._offsets.forget(revoked)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, connector: WebhookConnector) -> None:
        self.connector = connector

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.connector._on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except Exception:
        log.debug("ignored during webhook connector shutdown", exc_info=True)
