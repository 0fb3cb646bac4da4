"""Small helpers for tests on the real broker: create topics, produce, collect, wait for a condition."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def collect(bootstrap: str, topic: str, count: int, timeout: float = 60) -> list[bytes]:
    """Read `topic` from the beginning until `count` values arrived or `timeout` passed."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
        group_id=None, fetch_max_wait_ms=50,
    )  # fmt: skip
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(timeout):
            while len(values) < count:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    values.extend(record.value for record in records)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return values


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float, *, interval: float = 0.05, what: str = ""
) -> None:
    """Return as soon as `condition()` (sync or async) is true; fail the test after `timeout` seconds.

    Tests wait on what they depend on, never for a fixed time: on a busy machine a sleep
    is either too short (the test proves nothing) or too long (the suite crawls).
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= give_up:
            raise AssertionError(f"not within {timeout:g}s: {what or getattr(condition, '__name__', 'condition')}")
        await asyncio.sleep(interval)
