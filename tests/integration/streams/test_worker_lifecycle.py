"""A worker's start either brings up every part or leaves nothing behind; stop undoes start.

"Nothing behind": no asyncio task of the worker still running, no socket still open, no
Kafka client left unclosed (aiokafka reports those when they are collected), no temp
dir. Each test fails the start at a different step: the broker unreachable, a topic
that conflicts with its spec, no results topic, the engine, the faust app.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.contracts import RunRequest, RunResult, SpanEvent
from app.contracts.errors import ConfigError, ServiceUnreachableError
from app.project.project import Project
from app.streams import StreamSettings, TopicConflictError, TopicNames, Worker
from app.streams.faust_app import FerryApp
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project


class _NeverRuns:
    """A runner for workers that never get a record: no engine, no litellm import."""

    async def run(
        self, request: RunRequest, *, on_span: Callable[[SpanEvent], None] | None = None, trace_context: Any = None
    ) -> RunResult:
        raise AssertionError("no run expected")


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except FileNotFoundError:  # the listing's own descriptor, closed by now
            continue
    return count


class _Leftovers:
    """What the process holds now, compared with what it held when watching began."""

    def __init__(self, temp_root: Path) -> None:
        self.temp_root = temp_root
        self.tasks = set(asyncio.all_tasks())
        self.sockets = _open_sockets()
        self.unclosed: list[str] = []

    def new_tasks(self) -> list[str]:
        return sorted(t.get_name() for t in asyncio.all_tasks() - self.tasks if not t.done())

    def temp_dirs(self) -> list[str]:
        return sorted(p.name for p in self.temp_root.iterdir())

    async def assert_none(self) -> None:
        await wait_for(lambda: not self.new_tasks(), 15, what="the worker's tasks to end")
        await wait_for(lambda: _open_sockets() <= self.sockets, 15, what="the worker's sockets to close")
        gc.collect()  # aiokafka reports a client never closed when it is collected
        assert self.unclosed == []
        assert self.temp_dirs() == []


@contextmanager
def _watching(temp_root: Path) -> Iterator[_Leftovers]:
    loop = asyncio.get_running_loop()
    leftovers = _Leftovers(temp_root)
    previous = loop.get_exception_handler()

    def record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        leftovers.unclosed.append(str(context.get("message")))

    loop.set_exception_handler(record)
    try:
        yield leftovers
    finally:
        loop.set_exception_handler(previous)


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker's temp dirs go here, where the test can see whether any is left."""
    root = tmp_path / "temp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return write_project(tmp_path / "project", {"echo": llm_agent(max_concurrent_runs=2)})


async def _start_fails(worker: Worker, temp_root: Path, expected: type[BaseException]) -> BaseException:
    with _watching(temp_root) as leftovers:
        with pytest.raises(expected) as caught:
            await worker.start()
        assert not worker.outbox.running
        await leftovers.assert_none()
        await worker.stop()  # stopping a worker that never started is harmless
    return caught.value


async def test_an_unreachable_broker_is_one_error_naming_it(project: Project, temp_root: Path) -> None:
    for apply_topics in (True, False):  # the first client to connect: the admin client, else the producer
        settings = StreamSettings(bootstrap="127.0.0.1:1", app_id="never", apply_topics=apply_topics)
        worker = Worker(project, settings, runner=_NeverRuns())
        error = await _start_fails(worker, temp_root, ServiceUnreachableError)
        assert isinstance(error, ServiceUnreachableError) and error.address == "127.0.0.1:1"
        assert "ferry dev up" in error.fix


async def test_a_conflicting_topic_stops_the_start_before_anything_else(
    project: Project, temp_root: Path, kafka_bootstrap: str, names: TopicNames, make_worker: WorkerFactory
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # runs.results made by hand and not compacted: results would be deleted by age
        await admin.create_topics([NewTopic(names.results, 6, 1, topic_configs={"cleanup.policy": "delete"})])
    finally:
        await admin.close()
    worker = make_worker(project, "http://127.0.0.1:9/v1", runner=_NeverRuns())
    error = await _start_fails(worker, temp_root, TopicConflictError)
    assert "cleanup.policy is delete, spec wants compact" in str(error)


async def test_a_missing_results_topic_undoes_the_started_producer(
    project: Project, temp_root: Path, make_worker: WorkerFactory
) -> None:
    worker = make_worker(project, "http://127.0.0.1:9/v1", runner=_NeverRuns(), apply_topics=False)
    error = await _start_fails(worker, temp_root, ConfigError)
    assert "runs.results" in str(error) and "ferry topics apply" in str(error)


async def test_an_engine_that_fails_to_build_undoes_producer_and_index(
    project: Project, temp_root: Path, make_worker: WorkerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Worker, project: Project) -> Any:
        raise RuntimeError("engine could not be built")

    monkeypatch.setattr(Worker, "_make_engine", broken)
    worker = make_worker(project, "http://127.0.0.1:9/v1")
    await _start_fails(worker, temp_root, RuntimeError)


async def test_a_faust_app_that_fails_after_starting_is_stopped_with_everything_else(
    project: Project, temp_root: Path, make_worker: WorkerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[FerryApp] = []
    original = FerryApp.start

    async def start_then_fail(self: FerryApp) -> None:
        await original(self)
        started.append(self)
        raise RuntimeError("the consumer broke right after start")

    monkeypatch.setattr(FerryApp, "start", start_then_fail)
    worker = make_worker(project, "http://127.0.0.1:9/v1", runner=_NeverRuns())
    await _start_fails(worker, temp_root, RuntimeError)
    assert started and started[0].state in ("stopping", "shutdown")  # faust stopped its consumer and tasks too


async def test_stop_undoes_a_started_worker(project: Project, temp_root: Path, make_worker: WorkerFactory) -> None:
    worker = make_worker(project, "http://127.0.0.1:9/v1", runner=_NeverRuns())
    with _watching(temp_root) as leftovers:
        await worker.start()
        await worker.wait_assigned()
        assert worker.outbox.running and leftovers.temp_dirs() != []
        await worker.stop()
        await leftovers.assert_none()
