"""`TriggerLeader`: one process at a time does a job (fire cron ticks, expire approvals), its state in Kafka.

Cron ticks and bucket listings must each start a run once however many workers run.
Every process that runs triggers joins one consumer group (`<app-id>.triggers`) on the
one-partition, compacted state topic `ferry.triggers`: the group gives that partition to
exactly one member, and that member is the leader. When a leader stops or dies, the group
hands the partition to another member within the session timeout; that one reads the
topic to its end (each trigger's last state, keyed by trigger) and carries on from there.

A leader writes a trigger's state after the runs it started are on their request topics
(acks=all): a leader that dies in between leaves the next one to start the same runs
again, with the same run ids (derived from the tick or the object), which the workers
recognise as already queued, running or done. Kafka holds the state, so a restart, a
new machine or a second worker needs nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from app.kafka import IDLE_POLL_MS, LongPollConsumer
from app.streams.connect import start_client

log = logging.getLogger(__name__)

#: What the leader runs while it leads: given the state read at election, until cancelled.
Lead = Callable[[dict[str, Any]], Awaitable[None]]

#: How long a member that stopped answering keeps the partition (aiokafka's session timeout).
SESSION_TIMEOUT_MS = 10_000


class _Election(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types for it
    def __init__(self, leader: TriggerLeader) -> None:
        self._leader = leader

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._leader._step_down()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned:
            await self._leader._step_up()


class TriggerLeader:
    def __init__(self, bootstrap: str, topic: str, group_id: str, lead: Lead) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        self._lead = lead
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._member: asyncio.Task[None] | None = None
        self._leading: asyncio.Task[None] | None = None
        self.elected = asyncio.Event()  # set while this process leads (tests, logs)

    async def start(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=0)
        await start_client(producer.start, producer.stop, self.bootstrap)
        self._producer = producer
        consumer = LongPollConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id="ferry-triggers",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=SESSION_TIMEOUT_MS // 5,
            fetch_max_wait_ms=5000,  # its records go unread (membership only): fewer idle fetches
            idle_wait_ms=5000,
        )
        try:
            await start_client(consumer.start, consumer.stop, self.bootstrap)
        except BaseException:
            await producer.stop()
            raise
        consumer.subscribe([self.topic], listener=_Election(self))
        self._consumer = consumer
        self._member = asyncio.create_task(self._stay_in_group(consumer), name=f"member of {self.group_id}")

    async def stop(self) -> None:
        """Step down (the current round finishes its writes), leave the group, close."""
        member, self._member = self._member, None
        if member is not None:
            member.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await member
        await self._step_down()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()  # leaves the group: another member takes over at once
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def save(self, trigger: str, state: dict[str, Any]) -> None:
        """Record a trigger's state; returns once the broker holds it."""
        if self._producer is None:
            raise RuntimeError("the trigger leader is not started")
        value = json.dumps(state, separators=(",", ":")).encode()
        await (await self._producer.send(self.topic, key=trigger.encode(), value=value))

    async def _stay_in_group(self, consumer: AIOKafkaConsumer) -> None:
        """Poll, so the group keeps this member (and rebalances run); the records are our own writes."""
        while True:
            try:
                await consumer.getmany(timeout_ms=IDLE_POLL_MS)  # the group runs whatever it waits
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:  # a broker outage: the member rejoins once it is back
                log.warning("triggers: group %s: %s", self.group_id, exc)
                await asyncio.sleep(1.0)

    async def _step_up(self) -> None:
        if self._leading is not None and not self._leading.done():
            return
        state = await self._read_state()
        log.info("triggers: leading in group %s (%d trigger states read)", self.group_id, len(state))
        self.elected.set()
        self._leading = asyncio.create_task(self._lead_logged(state), name=f"leader of {self.group_id}")

    async def _lead_logged(self, state: dict[str, Any]) -> None:
        try:
            await self._lead(state)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("triggers: the leader's loop failed; it stays down until the next election")

    async def _step_down(self) -> None:
        self.elected.clear()
        leading, self._leading = self._leading, None
        if leading is not None and not leading.done():
            leading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leading

    async def _read_state(self) -> dict[str, Any]:
        """Every trigger's latest state: the topic read from its start to its end."""
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        await start_client(reader.start, reader.stop, self.bootstrap)
        state: dict[str, Any] = {}
        try:
            tp = TopicPartition(self.topic, 0)
            reader.assign([tp])
            await reader.seek_to_beginning(tp)
            end = (await reader.end_offsets([tp]))[tp]
            while await reader.position(tp) < end:
                for records in (await reader.getmany(tp, timeout_ms=1000)).values():
                    for record in records:
                        key = record.key.decode() if record.key else ""
                        if record.value is None:
                            state.pop(key, None)
                            continue
                        try:
                            state[key] = json.loads(record.value)
                        except ValueError:
                            log.warning("triggers: state of %r at offset %d is not JSON; ignored", key, record.offset)
        finally:
            await reader.stop()
        return state
