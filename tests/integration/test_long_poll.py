"""Long-poll consumers (app/kafka/long_poll.py) on a real broker: few fetches while idle, and
no record or offset lookup waiting for the held fetch.

The waits are set far apart (idle 5 s, busy 50 ms) so that each bound below sits well
between them: a record or lookup that waited for the held fetch would take ~5 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.kafka import FlowingBatch, LongPollConsumer
from tests.integration.kafka_helpers import create_topics, unique, wait_for

pytestmark = pytest.mark.integration

IDLE_WAIT_MS = 5000
BUSY_WAIT_MS = 50
WELL_UNDER_IDLE_S = 1.5
FETCH_API_KEY = 1


def count_fetches(consumer: AIOKafkaConsumer) -> list[float]:
    """The loop time of every fetch request the consumer sends from now on."""
    sent: list[float] = []
    client = consumer._client
    send = client.send

    async def counting(node_id: int, request: Any, **kwargs: Any) -> Any:
        if request.API_KEY == FETCH_API_KEY:
            sent.append(asyncio.get_running_loop().time())
        return await send(node_id, request, **kwargs)

    client.send = counting
    return sent


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = unique("long-poll")
    await create_topics(kafka_bootstrap, [name], partitions=2)
    return name


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=0)
    await producer.start()
    yield producer
    await producer.stop()


def long_poll_consumer(kafka_bootstrap: str, **settings: Any) -> LongPollConsumer:
    """A consumer with the test's waits (idle 5 s, busy 50 ms), no group, and `settings`."""
    return LongPollConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        fetch_max_wait_ms=BUSY_WAIT_MS,
        idle_wait_ms=IDLE_WAIT_MS,
        **settings,
    )


async def started(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    await consumer.start()
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    consumer.assign(tps)
    for tp in tps:
        await consumer.position(tp)  # the offset reset done: what follows is the idle long poll
    return tps


async def test_an_idle_consumer_fetches_rarely_yet_a_new_record_arrives_at_once(
    kafka_bootstrap: str, topic: str, producer: AIOKafkaProducer
) -> None:
    short = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, fetch_max_wait_ms=BUSY_WAIT_MS)
    long = long_poll_consumer(kafka_bootstrap)
    try:
        await started(short, topic)
        await started(long, topic)
        short_fetches, long_fetches = count_fetches(short), count_fetches(long)
        await wait_for(lambda: len(short_fetches) >= 20, 30, what="a plain consumer's idle fetches")
        assert len(long_fetches) <= 2  # ~1 s of idling: at most the held fetch and the one before it

        loop = asyncio.get_running_loop()
        sent = loop.time()
        await producer.send_and_wait(topic, b"new", partition=1)
        record = await asyncio.wait_for(long.getone(), 10)
        assert record.value == b"new"
        assert loop.time() - sent < WELL_UNDER_IDLE_S  # the held fetch was answered by the record
    finally:
        await short.stop()
        await long.stop()


async def test_a_partition_left_out_of_the_held_fetch_waits_only_the_short_wait(
    kafka_bootstrap: str, topic: str, producer: AIOKafkaProducer
) -> None:
    consumer = long_poll_consumer(kafka_bootstrap)
    try:
        [first, _] = await started(consumer, topic)
        await producer.send_and_wait(topic, b"a", partition=0)
        # "a" in hand and not yet taken: the next fetch leaves partition 0 out, so it waits briefly.
        await wait_for(lambda: first in consumer._fetcher._records, 10, what="a record in hand")
        await wait_for(lambda: consumer._fetcher._fetch_max_wait_ms == BUSY_WAIT_MS, 10, what="a short fetch")
        assert [record.value for record in (await consumer.getmany(first, timeout_ms=1000))[first]] == [b"a"]

        loop = asyncio.get_running_loop()
        sent = loop.time()
        await producer.send_and_wait(topic, b"b", partition=0)
        record = await asyncio.wait_for(consumer.getone(first), 10)
        assert record.value == b"b"
        assert loop.time() - sent < WELL_UNDER_IDLE_S
    finally:
        await consumer.stop()


async def test_offset_lookups_do_not_wait_behind_the_held_fetch(kafka_bootstrap: str, topic: str) -> None:
    consumer = long_poll_consumer(kafka_bootstrap)
    try:
        tps = await started(consumer, topic)
        fetches = count_fetches(consumer)
        await wait_for(lambda: fetches, 10, what="a held fetch")  # the broker now holds it for up to 5 s
        loop = asyncio.get_running_loop()
        asked = loop.time()
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        assert ends == begins == {tp: 0 for tp in tps}
        assert loop.time() - asked < WELL_UNDER_IDLE_S
    finally:
        await consumer.stop()


async def test_a_flowing_consumer_fetches_in_batches_and_long_polls_again_when_quiet(
    kafka_bootstrap: str, topic: str, producer: AIOKafkaProducer
) -> None:
    """While records flow each fetch waits for the batch (1 MiB, never reached here, or 2 s);
    the first record after a quiet spell still ends the held fetch at once."""
    consumer = long_poll_consumer(kafka_bootstrap, flowing=FlowingBatch(min_bytes=1 << 20, wait_ms=2000))
    received: list[bytes] = []

    async def read() -> None:
        while True:
            for records in (await consumer.getmany(timeout_ms=10_000)).values():
                received.extend(record.value for record in records)

    reader: asyncio.Task[None] | None = None
    try:
        await started(consumer, topic)
        reader = asyncio.create_task(read())
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await producer.send_and_wait(topic, b"first", partition=0)
        await wait_for(lambda: received == [b"first"], 10, what="the first record")
        assert loop.time() - sent < WELL_UNDER_IDLE_S  # quiet before it: the long poll answered at once

        fetches = count_fetches(consumer)
        for n in range(40):  # ~1 s of records on both partitions
            await producer.send_and_wait(topic, b"flow %d" % n, partition=n % 2)
            await asyncio.sleep(0.025)
        await wait_for(lambda: len(received) == 41, 10, what="the flowing records")
        assert len(fetches) <= 3  # batched: one fetch per 2 s, not one per record

        await wait_for(lambda: consumer._fetcher._fetch_min_bytes == 1, 10, what="an empty batch, then a long poll")
        sent = loop.time()
        await producer.send_and_wait(topic, b"after", partition=1)
        await wait_for(lambda: received[-1:] == [b"after"], 10, what="the record after the quiet spell")
        assert loop.time() - sent < WELL_UNDER_IDLE_S
    finally:
        if reader is not None:
            reader.cancel()
        await consumer.stop()


async def test_stop_waiting_ends_a_long_getmany_at_once_and_every_later_wait(
    kafka_bootstrap: str, topic: str, producer: AIOKafkaProducer
) -> None:
    consumer = long_poll_consumer(kafka_bootstrap)
    try:
        [first, _] = await started(consumer, topic)
        loop = asyncio.get_running_loop()
        pending = asyncio.create_task(consumer.getmany(timeout_ms=600_000))
        await wait_for(lambda: consumer._fetcher._fetch_waiters, 10, what="getmany waiting for records")
        asked = loop.time()
        consumer.stop_waiting()
        await asyncio.sleep(0)  # one loop turn: the wait is expiring, its getmany not yet back
        consumer.stop_waiting()  # a second stop then: no error
        assert await asyncio.wait_for(pending, 10) == {}
        assert await asyncio.wait_for(consumer.getmany(timeout_ms=600_000), 10) == {}
        assert loop.time() - asked < WELL_UNDER_IDLE_S

        # Records in hand are still handed over: only the wait is gone.
        await producer.send_and_wait(topic, b"late", partition=0)
        await wait_for(lambda: first in consumer._fetcher._records, 10, what="a record in hand")
        taken = await consumer.getmany(timeout_ms=600_000)
        assert [record.value for record in taken[first]] == [b"late"]
    finally:
        await consumer.stop()
