"""A throw-away project, a recording webhook receiver on loopback, and result producers."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from app.contracts import RunResult, RunStatus
from app.project import load_project
from app.project.project import Project
from app.streams import TopicNames, apply_topics
from app.streams.topic_plan import plan_topics
from tests.integration.kafka_helpers import produce, unique
from tests.integration.streams.conftest import make_worker, simulator  # noqa: F401 - fixtures of the worker test

SECRET = "whsec_integration"
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Received:
    delivery: str
    timestamp: str
    signature: str | None
    body: bytes
    status: int


@dataclass
class Receiver:
    """Answers `status` (settable) and records every request it got."""

    port: int
    status: int = 204
    requests: list[Received] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    async def start(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            self.requests.append(
                Received(
                    request.headers["X-Ferry-Delivery"],
                    request.headers["X-Ferry-Timestamp"],
                    request.headers.get("X-Ferry-Signature"),
                    body,
                    self.status,
                )
            )
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_post("/hook", handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver(free_port())
    await made.start()
    yield made
    await made.stop()


@pytest.fixture
def prefix() -> str:
    return unique("wh") + "."


@pytest.fixture
def app_id() -> str:
    return unique("ferry-wh")


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FERRY_WEBHOOK_SECRET", SECRET)
    return SECRET


@pytest.fixture
async def project(tmp_path: Path, kafka_bootstrap: str, prefix: str) -> Project:
    """A project with one agent whose ferry.yaml allows 127.0.0.1 only; its result topics created."""
    (tmp_path / "agents").mkdir()
    agent = {"version": "1.0", "name": "echo", "description": "test agent", "model": "openai/sim-model",
             "system_prompt": "Answer briefly."}  # fmt: skip
    (tmp_path / "agents" / "echo.yaml").write_text(yaml.safe_dump(agent))
    (tmp_path / "ferry.yaml").write_text(yaml.safe_dump({"webhooks": {"allow_private": ["127.0.0.1/32"]}}))
    loaded = load_project(tmp_path)
    names = TopicNames(prefix)
    wanted = {names.results, names.webhooks_dlq}
    await apply_topics(kafka_bootstrap, [t for t in plan_topics(loaded, names, (), 1) if t.name in wanted])
    return loaded


def result(run_id: str, callback_url: str | None) -> RunResult:
    now = datetime.now(UTC)
    return RunResult(
        run_id=run_id, agent="echo", status=RunStatus.COMPLETED, output={"answer": run_id},
        started_at=now, ended_at=now, duration_ms=1.0, callback_url=callback_url, tenant="acme",
    )  # fmt: skip


async def produce_results(bootstrap: str, names: TopicNames, results: list[RunResult]) -> None:
    await produce(bootstrap, names.results, [(r.run_id.encode(), r.model_dump_json().encode()) for r in results])


def ferry_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


def child_env(**extra: str) -> dict[str, str]:
    return dict(os.environ) | {"LITELLM_LOCAL_MODEL_COST_MAP": "True"} | extra
