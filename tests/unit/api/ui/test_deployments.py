"""The deployments page against an in-memory deployments log: roles, who may change, what is written."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi.testclient import TestClient

from app.api import ApiStore, create_key
from app.api.ui import deployments
from app.deploy.log import Book
from app.deploy.records import ActiveState, Deployment
from app.observability.history import HistoryStore
from tests.unit.api.ui.conftest import log_in


class MemoryLog:
    def __init__(self) -> None:
        self.book = Book({v: Deployment(version=v, message=f"release {v}") for v in ("v1", "v2", "v3")})
        self.book.state = ActiveState().activate("v1", "deploy").activate("v2", "deploy")
        self.written: list[ActiveState] = []

    async def read(self) -> Book:
        return self.book

    async def set_state(self, state: ActiveState) -> None:
        self.written.append(state)
        self.book.state = state

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[MemoryLog]:
        yield self


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_an_admin_activates_sets_a_canary_and_rolls_back(
    ui: TestClient, history: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = MemoryLog()
    monkeypatch.setattr(deployments, "open_log", lambda services: log.opened())
    log_in(ui, create_key(ApiStore(history.engine), "ops", admin=True).token)
    page = ui.get("/ui/deployments").text
    assert 'id="active-version">v2<' in page and "Roll back to v1" in page
    csrf = _csrf(page)
    refused = ui.post(
        "/ui/deployments/change", data={"csrf": csrf, "action": "canary", "version": "v3", "percent": "100"}
    )
    assert refused.status_code == 400 and log.written == []
    canary = ui.post(
        "/ui/deployments/change", data={"csrf": csrf, "action": "canary", "version": "v3", "percent": "10"}
    )
    assert "Canary set" in canary.text and log.book.state.canary is not None
    assert "canary 10 %" in canary.text
    ui.post("/ui/deployments/change", data={"csrf": csrf, "action": "rollback"})
    assert log.book.state.active == "v1" and log.book.state.canary is None
    ui.post("/ui/deployments/change", data={"csrf": csrf, "action": "activate", "version": "v3"})
    assert log.book.state.active == "v3" and log.book.state.previous == ("v1",)
    missing = ui.post("/ui/deployments/change", data={"csrf": csrf, "action": "activate", "version": "v9"})
    assert missing.status_code == 404 and len(log.written) == 3


def test_without_a_broker_the_page_says_so(ui: TestClient, token: str) -> None:
    log_in(ui, token)
    assert "started without the deployments topic" in ui.get("/ui/deployments").text


def test_a_tenant_key_sees_versions_but_changes_nothing(
    ui: TestClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = MemoryLog()
    monkeypatch.setattr(deployments, "open_log", lambda services: log.opened())
    log_in(ui, token)
    page = ui.get("/ui/deployments").text
    assert "release v3" in page and 'id="rollback"' not in page
    refused = ui.post("/ui/deployments/change", data={"csrf": _csrf(page), "action": "rollback"})
    assert refused.status_code == 403 and log.written == []
