"""Starting the spend consumers and producer: bounded, with the worker's one error for
an unreachable broker and a `ConfigError` for a missing topic (aiokafka alone waits 40 s
per request on an address that never answers, and longer for a topic that is not there)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError

from app.contracts.errors import ConfigError, ServiceUnreachableError

CONNECT_TIMEOUT_S = 10.0


async def start_bounded(
    start: Callable[[], Awaitable[object]],
    close: Callable[[], Awaitable[object]],
    bootstrap: str,
    timeout: float = CONNECT_TIMEOUT_S,
) -> None:
    """`await start()` within `timeout`; on any failure `await close()` and raise."""
    try:
        async with asyncio.timeout(timeout):
            await start()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await close()
        if isinstance(exc, KafkaConnectionError | TimeoutError | OSError):
            raise ServiceUnreachableError(
                "the Kafka broker",
                bootstrap,
                "start one with `ferry dev up`, or pass --broker / set FERRY_BROKER to a running Kafka",
            ) from exc
        raise


async def partitions_of(bootstrap: str, topic: str, timeout: float = CONNECT_TIMEOUT_S) -> list[TopicPartition]:
    """Every partition of `topic`, or `ConfigError` if it does not exist."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await start_bounded(client.bootstrap, client.close, bootstrap, timeout)
    try:
        async with asyncio.timeout(timeout):
            cluster = await client.fetch_all_metadata()
    finally:
        await client.close()
    numbers = cluster.partitions_for_topic(topic)
    if not numbers:
        raise ConfigError(f"topic {topic!r} does not exist — fix: run `ferry topics apply` (or start a worker)")
    return [TopicPartition(topic, number) for number in sorted(numbers)]
