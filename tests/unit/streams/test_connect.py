"""An unreachable broker is one `ServiceUnreachableError`, within the connect timeout, logged by no one else."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiokafka import AIOKafkaProducer

from app.contracts.errors import ServiceUnreachableError
from app.streams.connect import ensure_broker, start_client


async def test_a_refused_connection_names_the_address_and_the_fix(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="aiokafka"), pytest.raises(ServiceUnreachableError) as caught:
        await ensure_broker("127.0.0.1:1")
    assert caught.value.address == "127.0.0.1:1" and caught.value.service == "the Kafka broker"
    assert str(caught.value).startswith("cannot reach the Kafka broker at 127.0.0.1:1 — fix: ")
    # aiokafka's own "Unable connect to" ERROR is not printed beside Ferry's one line.
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_broker_that_never_answers_fails_within_the_connect_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, read, never answer (a firewall or a wrong service does this)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(ServiceUnreachableError):
            await ensure_broker(f"127.0.0.1:{port}", timeout=0.5)
    finally:
        server.close()
    assert time.monotonic() - started < 5  # aiokafka alone would wait 40 s


async def test_a_client_that_fails_to_start_is_closed() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")
    with pytest.raises(ServiceUnreachableError):
        await start_client(producer.start, producer.stop, "127.0.0.1:1")
    assert producer._closed is True  # aiokafka warns "Unclosed AIOKafkaProducer" otherwise
