"""A projector that cannot start leaves nothing behind: no consumer, no task, no store."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from app.contracts.errors import ConfigError, ServiceUnreachableError
from app.observability.history import HistorySettings, HistoryStore
from app.observability.history.projector import HistoryProjector
from app.streams.naming import TopicNames


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def other_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def test_an_unreachable_broker_fails_the_start_and_leaks_nothing(tmp_path: Path) -> None:
    before = other_tasks()
    settings = HistorySettings(database_url=f"sqlite:///{tmp_path / 'h.db'}", connect_timeout_s=5)
    projector = HistoryProjector(f"127.0.0.1:{closed_port()}", TopicNames("t."), settings)
    with pytest.raises(ServiceUnreachableError, match="the Kafka broker"):
        await projector.start()
    await asyncio.sleep(0)  # let anything cancelled finish
    assert other_tasks() - before == set()
    assert not projector.running and projector.store is None
    await projector.stop()  # stopping a projector that never started is harmless


async def test_a_given_store_survives_a_failed_start(tmp_path: Path) -> None:
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    projector = HistoryProjector(
        f"127.0.0.1:{closed_port()}", TopicNames(), HistorySettings(connect_timeout_s=5), store=store
    )
    with pytest.raises(ServiceUnreachableError):
        await projector.start()
    assert store.counts() == (0, 0)  # still open and usable
    store.close()


async def test_a_bad_database_url_fails_before_any_kafka_client_exists(tmp_path: Path) -> None:
    before = other_tasks()
    projector = HistoryProjector(
        f"127.0.0.1:{closed_port()}", TopicNames(), HistorySettings(database_url="mysql://u@h/db")
    )
    with pytest.raises(ConfigError, match="SQLite and PostgreSQL"):
        await projector.start()
    assert other_tasks() - before == set()
