"""Reaching the broker: one bounded connect, one error that says where and what to do.

Every Kafka client Ferry starts (the worker's producer and consumers, the admin client
of `apply_topics`, `Submitter`, `ResultWatcher`) starts through `start_client`, so an
unreachable broker is always the same `ServiceUnreachableError` — raised after at
most `CONNECT_TIMEOUT_S` (aiokafka alone waits 40 s per request on an address that
never answers) and with the client closed again, so nothing is left open.

While a client bootstraps, aiokafka logs each address it cannot connect to as an
ERROR. Those records are held back: if the start fails, the one error raised here says
it; if another bootstrap address answered, they are logged after all, as warnings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError

from app.contracts.errors import ConfigError, ServiceUnreachableError

CONNECT_TIMEOUT_S = 10.0
BROKER_FIX = "start one with `ferry dev up`, or pass --broker / set FERRY_BROKER to a running Kafka"

_AIOKAFKA_CLIENT_LOG = logging.getLogger("aiokafka")  # aiokafka/client.py logs bootstrap failures here


def broker_unreachable(bootstrap: str) -> ServiceUnreachableError:
    return ServiceUnreachableError("the Kafka broker", bootstrap, BROKER_FIX)


async def start_client(
    start: Callable[[], Awaitable[object]],
    close: Callable[[], Awaitable[object]],
    bootstrap: str,
    *,
    timeout: float = CONNECT_TIMEOUT_S,
) -> None:
    """`await start()` within `timeout`; on any failure `await close()` and raise.

    A broker that refuses or does not answer becomes `ServiceUnreachableError`; any other
    failure propagates as it is (after the close).
    """
    try:
        with _held_bootstrap_errors():
            async with asyncio.timeout(timeout):
                await start()
    except (KafkaConnectionError, TimeoutError, OSError) as exc:
        await close()
        raise broker_unreachable(bootstrap) from exc
    except BaseException:
        await close()
        raise


async def ensure_broker(bootstrap: str, *, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise `ServiceUnreachableError` unless a broker at `bootstrap` answers within `timeout`."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await start_client(client.bootstrap, client.close, bootstrap, timeout=timeout)
    await client.close()


async def topic_partitions(bootstrap: str, topic: str, *, timeout: float = CONNECT_TIMEOUT_S) -> list[TopicPartition]:
    """Every partition of `topic`, or `ConfigError` if it does not exist.

    Asked before a consumer is given the topic: aiokafka's consumer, subscribed to a topic
    that does not exist, waits 40 s in `start()` and then fails with an unrelated error.
    """
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await start_client(client.bootstrap, client.close, bootstrap, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            cluster = await client.fetch_all_metadata()
    finally:
        await client.close()
    partitions = cluster.partitions_for_topic(topic)
    if not partitions:
        raise ConfigError(f"topic {topic!r} does not exist — fix: run `ferry topics apply`")
    return [TopicPartition(topic, p) for p in sorted(partitions)]


class _HoldBootstrapErrors(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith("Unable connect to"):
            self.held.append(record)
            return False
        return True


@contextlib.contextmanager
def _held_bootstrap_errors() -> Iterator[None]:
    hold = _HoldBootstrapErrors()
    # First in line: a held record must not reach the outage log limiter (kafka_logs),
    # which would announce an outage for a start that ends in one clear line anyway.
    _AIOKAFKA_CLIENT_LOG.filters.insert(0, hold)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        _AIOKAFKA_CLIENT_LOG.removeFilter(hold)
        if not failed:
            for record in hold.held:  # another address answered: these are worth a warning
                _AIOKAFKA_CLIENT_LOG.warning(record.getMessage())
