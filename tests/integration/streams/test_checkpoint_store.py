"""The checkpoint store's writes on a real broker: a final answer is held and never written
when the run's result comes first; written when the result is late, before the run's
later records, and tombstoned after them (the tombstones go out on the outbox's
best-effort producer, the steps on the store's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.streams import TopicNames
from app.streams.checkpoints import FINAL_ANSWER_HOLD_S, CheckpointStore
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


@asynccontextmanager
async def _store(bootstrap: str) -> AsyncIterator[CheckpointStore]:
    """A started store and its outbox, stopped as a worker stops them (the store first: its
    tombstones are queued on the outbox)."""
    outbox = Outbox(bootstrap, TopicNames(unique("ckpt") + "."))
    await outbox.start()
    store = CheckpointStore(bootstrap, outbox.names, outbox)
    try:
        await store.start()
        yield store
    finally:
        await store.stop()
        await outbox.stop()


def _steps(records: list[tuple[str, bytes | None]]) -> list[tuple[str, str, bool]]:
    """(run id, step, tombstone?) of each record, in topic order."""
    return [(*key.split("\0"), value is None) for key, value in records]  # type: ignore[misc]


async def test_a_final_answer_whose_result_came_first_is_never_written(kafka_bootstrap: str) -> None:
    async with _store(kafka_bootstrap) as store:
        answered = store.journal("run-answered")
        answered.record_soon("llm.1", {"n": 1})
        assert answered.recorded("llm.1") == {"n": 1}  # known here at once
        assert store.forget("run-answered") == 0  # nothing was written: nothing to tombstone
    # Stopped: an answer still held would have been written now. A later record on the same
    # partition: the topic is read up to it.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(store.topic, b"{}", key=b"run-later\0llm.1", partition=answered.partition)
    finally:
        await producer.stop()
    records = await _records(kafka_bootstrap, store.topic, answered.partition, 1)
    assert _steps(records) == [("run-later", "llm.1", False)]
    assert store.writes == 0


async def test_an_answer_whose_result_is_late_is_written_before_the_run_s_later_steps(kafka_bootstrap: str) -> None:
    async with _store(kafka_bootstrap) as store:
        steps = store.journal("run-1")
        steps.record_soon("llm.1", {"n": 1})  # a final answer that failed validation: the model is asked again
        await steps.record("llm.2", {"n": 2})  # awaited: after llm.1 is on the topic
        steps.record_soon("llm.3", {"n": 3})  # its result is late: written after the hold
        await wait_for(lambda: store.writes == 3, timeout=10 * FINAL_ANSWER_HOLD_S, what="the late answer written")
        assert store.forget("run-1") == 3  # the tombstones follow every write
        assert store.steps_of("run-1") == {}
    records = await _records(kafka_bootstrap, store.topic, steps.partition, 6)
    assert _steps(records[:3]) == [("run-1", "llm.1", False), ("run-1", "llm.2", False), ("run-1", "llm.3", False)]
    assert sorted(_steps(records[3:])) == [("run-1", "llm.1", True), ("run-1", "llm.2", True), ("run-1", "llm.3", True)]


async def test_a_store_stopped_with_answers_held_writes_them_for_the_next_worker(kafka_bootstrap: str) -> None:
    """A worker stopping with runs answered and no result yet: their answers reach the topic
    (with them the worker that gets the runs next does not ask the model again)."""
    async with _store(kafka_bootstrap) as store:
        steps = store.journal("run-2")
        steps.record_soon("llm.1", {"n": 1})
    records = await _records(kafka_bootstrap, store.topic, steps.partition, 1)
    assert _steps(records) == [("run-2", "llm.1", False)]
    assert store.writes == 1
