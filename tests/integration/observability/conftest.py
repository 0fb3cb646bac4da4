"""Fixtures of the history tests: topics on the shared broker, stores on SQLite and on the
dev stack's PostgreSQL (a fresh database per test), a projector factory."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from app.contracts import RunResult, SpanEvent
from app.devstack.service import ServiceInfo
from app.observability.history import HistorySettings, HistoryStore
from app.observability.history.projector import HistoryProjector
from app.streams import TopicNames
from tests.integration.kafka_helpers import create_topics, produce, unique

PARTITIONS = 3


@pytest.fixture
async def names(kafka_bootstrap: str) -> TopicNames:
    topics = TopicNames(unique("hist") + ".")
    await create_topics(kafka_bootstrap, [topics.results, topics.traces], partitions=PARTITIONS)
    return topics


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Callable[[], str]:
    def fresh() -> str:
        return f"sqlite:///{tmp_path / (uuid.uuid4().hex[:8] + '.db')}"

    return fresh


@pytest.fixture
def postgres_url(postgres: ServiceInfo) -> Iterator[Callable[[], str]]:
    """A new empty database on the dev stack's PostgreSQL per call, dropped afterwards."""
    made: list[str] = []
    admin = make_url(postgres.address)

    def fresh() -> str:
        name = f"hist_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        made.append(name)
        return admin.set(database=name).render_as_string(hide_password=False)

    yield fresh
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as connection:
        for name in made:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> Callable[[], str]:
    """Fresh store URLs on each backend in turn."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    factory: Callable[[], str] = request.getfixturevalue(fixture)
    return factory


ProjectorFactory = Callable[..., HistoryProjector]


@pytest.fixture
async def make_projector(kafka_bootstrap: str, names: TopicNames) -> AsyncIterator[ProjectorFactory]:
    """Projectors on the test's topics (not started); all stopped at the end."""
    made: list[HistoryProjector] = []
    group = unique("hist-group")

    def factory(url: str | None = None, *, store: HistoryStore | None = None, **overrides: Any) -> HistoryProjector:
        settings = HistorySettings(database_url=url, group_id=overrides.pop("group_id", group), **overrides)
        projector = HistoryProjector(kafka_bootstrap, names, settings, store=store)
        made.append(projector)
        return projector

    yield factory
    for projector in made:
        with contextlib.suppress(Exception):
            await projector.stop()


async def publish(bootstrap: str, names: TopicNames, results: list[RunResult], spans: list[SpanEvent]) -> None:
    """As the worker's outbox does: keyed by run id."""
    await produce(bootstrap, names.traces, [(s.run_id.encode(), s.model_dump_json().encode()) for s in spans])
    await produce(bootstrap, names.results, [(r.run_id.encode(), r.model_dump_json().encode()) for r in results])


async def wait_for_counts(store: HistoryStore, runs: int, spans: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        counts = await asyncio.to_thread(store.counts)
        if counts == (runs, spans):
            return
        if counts[0] > runs or counts[1] > spans or time.monotonic() > deadline:
            raise AssertionError(f"store holds {counts}, expected ({runs}, {spans})")
        await asyncio.sleep(0.1)
