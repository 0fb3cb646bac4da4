"""A batching `TopicTail` (app/streams/topic_tail.py) on a real broker: records written one at
a time reach its owner in a few large batches, `catch_up` still returns once everything
written before it has been handed over, and a record after a quiet spell arrives at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from app.kafka import FlowingBatch
from app.streams.topic_tail import TopicTail
from tests.integration.kafka_helpers import create_topics, unique, wait_for

pytestmark = pytest.mark.integration

RECORDS = 300
WAIT_MS = 250


async def test_records_written_one_by_one_arrive_in_few_batches_and_catch_up_sees_them_all(
    kafka_bootstrap: str,
) -> None:
    topic = unique("tail")
    await create_topics(kafka_bootstrap, [topic], partitions=3)
    batches: list[int] = []
    seen: set[bytes] = set()

    def take(records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        batches.append(len(records))
        seen.update(record.key for record in records if record.key is not None)

    tail = TopicTail(
        kafka_bootstrap, topic, take, keep=1 << 62, fetch_max_wait_ms=WAIT_MS, flowing=FlowingBatch(16 * 1024, WAIT_MS)
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=0)
    await producer.start()
    await tail.start()
    try:
        for i in range(RECORDS):  # each acknowledged before the next: a busy worker's results
            await producer.send_and_wait(topic, key=f"run-{i}".encode(), value=bytes(200))
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await tail.catch_up(timeout=10)
        assert loop.time() - asked < 2 * WAIT_MS / 1000 + 1  # the fetch under way, then the rest
        assert len(seen) == RECORDS
        # Unbatched, a tail following a topic written this slowly gets a record or two per fetch.
        assert len(batches) <= RECORDS / 5, batches  # a handover per partition per fetch
    finally:
        await tail.stop()
        await producer.stop()


async def test_a_record_on_a_quiet_topic_reaches_a_batching_tail_at_once(kafka_bootstrap: str) -> None:
    """Quiet, the tail long-polls: a record answers the held fetch instead of waiting out the
    batch's wait (5 s here), as a tail waiting for bytes on every fetch did."""
    topic = unique("tail")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    arrived: list[float] = []
    loop = asyncio.get_running_loop()
    tail = TopicTail(
        kafka_bootstrap,
        topic,
        lambda records: arrived.extend(loop.time() for _ in records),
        keep=1 << 62,
        fetch_max_wait_ms=5000,
        flowing=FlowingBatch(16 * 1024, 5000),
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=0)
    await producer.start()
    await tail.start()
    try:
        sent = loop.time()
        await producer.send_and_wait(topic, key=b"run-1", value=bytes(200))
        await wait_for(lambda: arrived, 10, what="the record")
        assert arrived[0] - sent < 1.5
    finally:
        await tail.stop()
        await producer.stop()
