"""The checkpoint store's writes on a real broker: a final step written without waiting
still reaches the topic before the run's later records, and its tombstone follows it
(the tombstones go out on the outbox's best-effort producer, the steps on the store's)."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.streams import TopicNames
from app.streams.checkpoints import CheckpointStore, checkpoint_partition
from app.streams.outbox import Outbox
from tests.integration.kafka_helpers import unique, wait_for

pytestmark = pytest.mark.integration


async def _records(bootstrap: str, topic: str, partition: int, count: int) -> list[tuple[str, bytes | None]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    found: list[tuple[str, bytes | None]] = []
    try:
        consumer.assign([TopicPartition(topic, partition)])

        async def enough() -> bool:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend((r.key.decode(), r.value) for r in records if r.key is not None)
            return len(found) >= count

        await wait_for(enough, timeout=30)
    finally:
        await consumer.stop()
    return found


async def test_steps_written_soon_keep_their_order_with_later_steps_and_tombstones(kafka_bootstrap: str) -> None:
    names = TopicNames(unique("ckpt") + ".")
    outbox = Outbox(kafka_bootstrap, names)
    await outbox.start()
    store = CheckpointStore(kafka_bootstrap, names, outbox)
    await store.start()
    try:
        steps = store.journal("run-1")
        steps.record_soon("llm.1", {"n": 1})  # a final answer that failed validation: the model is asked again
        assert steps.recorded("llm.1") == {"n": 1}  # known here at once
        await steps.record("llm.2", {"n": 2})  # awaited: after llm.1 is on the topic
        steps.record_soon("llm.3", {"n": 3})
        assert store.forget("run-1") == 3  # the tombstones wait for llm.3's write
        assert store.steps_of("run-1") == {}
        await store.catch_up()
    finally:
        await store.stop()  # waits for the writes under way; the tombstones are queued
        await outbox.stop()  # sends them
    partition = checkpoint_partition("run-1", store.partitions)
    records = await _records(kafka_bootstrap, store.topic, partition, 6)
    keys = [(key.split("\0")[1], value is None) for key, value in records]
    assert keys[:3] == [("llm.1", False), ("llm.2", False), ("llm.3", False)]
    assert sorted(keys[3:]) == [("llm.1", True), ("llm.2", True), ("llm.3", True)]
    assert store.writes == 3


async def test_a_store_stopped_with_writes_under_way_finishes_them_first(kafka_bootstrap: str) -> None:
    """A worker stopping right after a run's last step and result: the step written soon and
    the tombstones still reach the topic (they once found the producer gone and were dropped)."""
    names = TopicNames(unique("ckpt") + ".")
    outbox = Outbox(kafka_bootstrap, names)
    await outbox.start()
    store = CheckpointStore(kafka_bootstrap, names, outbox)
    await store.start()
    steps = store.journal("run-2")
    steps.record_soon("llm.1", {"n": 1})
    assert store.forget("run-2") == 1
    await store.stop()  # at once: the write and its tombstone are both under way
    await outbox.stop()  # as a worker stops them: the tombstone queued on the outbox goes out
    records = await _records(kafka_bootstrap, store.topic, checkpoint_partition("run-2", store.partitions), 2)
    assert [(key.split("\0")[1], value is None) for key, value in records] == [("llm.1", False), ("llm.1", True)]
