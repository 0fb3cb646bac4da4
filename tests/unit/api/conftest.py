"""An API app on a throw-away SQLite history with a fake request sink: no broker needed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api import ApiServices, ApiSettings, ApiStore, create_app, create_key
from app.contracts import RunRequest
from app.observability.history import HistoryStore
from app.project.project import Project
from tests.integration.streams.conftest import llm_agent, write_project


class RecordingSink:
    def __init__(self) -> None:
        self.requests: list[RunRequest] = []

    async def submit(self, request: RunRequest, key: str | None = None) -> None:
        self.requests.append(request)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return write_project(tmp_path / "project", {"echo": llm_agent()})


@pytest.fixture
def history(tmp_path: Path) -> Iterator[HistoryStore]:
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'history.db'}")
    yield store
    store.close()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def make_client(project: Project, history: HistoryStore, sink: RecordingSink) -> Iterator[object]:
    opened: list[TestClient] = []

    def factory(settings: ApiSettings | None = None) -> TestClient:
        @asynccontextmanager
        async def open_sink() -> AsyncIterator[RecordingSink]:
            yield sink

        services = ApiServices(project=project, history=history, store=ApiStore(history.engine), open_sink=open_sink)
        client = TestClient(create_app(settings or ApiSettings(), services), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield factory
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def token(history: HistoryStore) -> str:
    return create_key(ApiStore(history.engine), "acme").token
