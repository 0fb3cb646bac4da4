"""`ferry api` as a client meets it: a real uvicorn server on a loopback port, driven by
httpx, producing to the real broker; a real worker (the LLM simulator as its model) runs
the requests and the history projector records them, which is where the API reads runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.api import ApiServices, ApiSettings, ApiStore, create_app, create_key
from app.api.services import ApprovalAccess, ReplyWaiter
from app.connectors.webhook import WebhookConnector, WebhookSettings, destinations_for, verify
from app.devstack.llm_sim import LLMSimulator
from app.observability.history import HistorySettings, HistoryStore
from app.observability.history.projector import HistoryProjector
from app.project.project import Project
from app.streams import Submitter, TopicNames, apply_topics
from app.streams.topic_plan import plan_topics
from tests.integration import conftest as services_fixtures
from tests.integration.connectors.conftest import Receiver, free_port
from tests.integration.kafka_helpers import create_topics, unique
from tests.integration.streams import conftest as streams_fixtures
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whsec_api_e2e"

# The broker, worker and simulator fixtures of the integration suite, used here as they are.
dev_stack = services_fixtures.dev_stack
kafka_bootstrap = services_fixtures.kafka_bootstrap
prefix = streams_fixtures.prefix
names = streams_fixtures.names
simulator = streams_fixtures.simulator
make_worker = streams_fixtures.make_worker


@dataclass
class Api:
    url: str
    history: HistoryStore
    store: ApiStore

    def key(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {create_key(self.store, tenant).token}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return write_project(tmp_path / "project", {"echo": llm_agent(max_concurrent_runs=4)})


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'history.db'}")
    yield store
    store.close()


ServeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def serve_api(
    kafka_bootstrap: str, names: TopicNames, project: Project, history: HistoryStore
) -> AsyncIterator[ServeApi]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(
        settings: ApiSettings | None = None,
        project: Project = project,
        replies: ReplyWaiter | None = None,
        approvals: ApprovalAccess | None = None,
    ) -> Api:
        store = ApiStore(history.engine)
        services = ApiServices(
            project=project,
            history=history,
            store=store,
            open_sink=lambda: Submitter(kafka_bootstrap, project, names),
            replies=replies,
            approvals=approvals,
        )
        port = _free_port()
        config = uvicorn.Config(
            create_app(settings or ApiSettings(), services), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        async with asyncio.timeout(30):
            while not server.started:
                assert not task.done(), "the API server stopped while starting"
                await asyncio.sleep(0.05)
        return Api(f"http://127.0.0.1:{port}", history, store)

    yield start
    for server, task in servers:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 60) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.1)


async def test_a_posted_run_completes_once_and_is_read_back_by_its_tenant_only(
    kafka_bootstrap: str,
    names: TopicNames,
    project: Project,
    history: HistoryStore,
    simulator: LLMSimulator,
    make_worker: WorkerFactory,
    serve_api: ServeApi,
) -> None:
    worker = make_worker(project, simulator.base_url, emit_traces=True)
    await worker.start()
    projector = HistoryProjector(kafka_bootstrap, names, HistorySettings(group_id=unique("api-hist")), store=history)
    await projector.start()
    try:
        api = await serve_api()
        acme, globex = api.key("acme"), api.key("globex")
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            headers = {**acme, "Idempotency-Key": "order-1"}
            posted = await client.post("/v1/agents/echo/runs", json={"input": {"message": "hi"}}, headers=headers)
            assert posted.status_code == 202, posted.text
            run_id = posted.json()["run_id"]
            assert posted.json() == {"run_id": run_id, "status": "queued"}
            again = await client.post("/v1/agents/echo/runs", json={"input": {"message": "hi"}}, headers=headers)
            assert again.status_code in (200, 202) and again.json()["run_id"] == run_id

            async def completed() -> dict[str, Any] | None:
                body = (await client.get(f"/v1/runs/{run_id}", headers=acme)).json()
                return body if body["status"] == "completed" else None

            run = await _until(completed)
            assert run["output"] == "Simulated reply to: hi"
            assert run["tenant"] == "acme" and run["usage"]["llm_calls"] == 1
            assert run["timings"]["duration_ms"] >= 0

            # An idempotent retry of a finished run returns its result at once, without running again.
            retry = await client.post("/v1/agents/echo/runs", json={"input": {"message": "hi"}}, headers=headers)
            assert retry.status_code == 200 and retry.json()["output"] == "Simulated reply to: hi"

            # ?wait returns the result inline when the run finishes within it.
            waited = await client.post(
                "/v1/agents/echo/runs", params={"wait": 30}, json={"input": {"message": "now"}}, headers=acme
            )
            assert waited.status_code == 200, waited.text
            assert waited.json()["output"] == "Simulated reply to: now"

            async def traced() -> dict[str, Any] | None:
                response = await client.get(f"/v1/runs/{run_id}/trace", headers=acme)
                return response.json() if response.status_code == 200 and response.json()["spans"] else None

            trace = await _until(traced)
            assert trace["spans"][0]["kind"] == "run"

            listed = (await client.get("/v1/runs", params={"agent": "echo"}, headers=acme)).json()["runs"]
            assert {r["run_id"] for r in listed} == {run_id, waited.json()["run_id"]}

            for path in (f"/v1/runs/{run_id}", f"/v1/runs/{run_id}/trace"):
                other = await client.get(path, headers=globex)
                assert other.status_code == 404 and other.json()["type"].endswith("/run-not-found")
            assert (await client.get("/v1/runs", headers=globex)).json()["runs"] == []
        assert simulator.calls_total == 2  # the duplicate POST and the retry ran nothing
    finally:
        await projector.stop()
        await worker.stop()


async def test_refusals_are_problem_documents_without_a_traceback(
    kafka_bootstrap: str,
    names: TopicNames,
    serve_api: ServeApi,
) -> None:
    await create_topics(kafka_bootstrap, [names.request("echo")])  # no worker here: nothing runs
    api = await serve_api(ApiSettings(max_body_bytes=4096, rate_per_second=0.2, rate_burst=3))
    acme = api.key("acme")
    url = "/v1/agents/echo/runs"
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        responses = {
            401: await client.post(url, json={"input": {}}),
            404: await client.post("/v1/agents/nobody/runs", json={"input": {}}, headers=acme),
            413: await client.post(url, json={"input": {"text": "x" * 5000}}, headers=acme),
        }
        keyed = api.key("acme")
        first = await client.post(url, json={"input": {"n": 1}}, headers={**keyed, "Idempotency-Key": "k"})
        assert first.status_code == 202
        responses[409] = await client.post(url, json={"input": {"n": 2}}, headers={**keyed, "Idempotency-Key": "k"})
        responses[422] = await client.post(url, json={"input": "just text"}, headers=keyed)
        limited = api.key("acme")
        codes = [(await client.get("/v1/agents", headers=limited)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        responses[429] = await client.get("/v1/agents", headers=limited)

    assert int(responses[429].headers["Retry-After"]) >= 1
    assert "must be a JSON object, not a string" in responses[422].json()["detail"]
    for status, response in responses.items():
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert set(body) >= {"type", "title", "status", "detail"} and body["status"] == status
        assert "Traceback" not in response.text and 'File "' not in response.text


async def test_a_posted_run_with_a_callback_reaches_a_receiver_signed(
    tmp_path: Path,
    kafka_bootstrap: str,
    names: TopicNames,
    history: HistoryStore,
    simulator: LLMSimulator,
    make_worker: WorkerFactory,
    serve_api: ServeApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Accept → queue → process → callback: the receiver verifies the signature over the body."""
    monkeypatch.setenv("FERRY_WEBHOOK_SECRET", WEBHOOK_SECRET)
    project = write_project(
        tmp_path / "hooked", {"echo": llm_agent()}, {"webhooks": {"allow_private": ["127.0.0.1/32"]}}
    )
    receiver = Receiver(free_port())
    await receiver.start()
    worker = make_worker(project, simulator.base_url)
    await worker.start()
    await apply_topics(kafka_bootstrap, [t for t in plan_topics(project, names, (), 1) if t.name == names.webhooks_dlq])
    settings = WebhookSettings(group_id=unique("api-wh"))
    connector = WebhookConnector(kafka_bootstrap, names, destinations_for(project, settings), settings)
    await connector.start()
    try:
        api = await serve_api(project=project)
        auth = api.key("acme")
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            posted = await client.post(
                "/v1/agents/echo/runs", json={"input": {"message": "ping"}, "callback_url": receiver.url}, headers=auth
            )
        assert posted.status_code == 202, posted.text
        run_id = posted.json()["run_id"]
        delivered = await _until(_async(lambda: receiver.accepted()), timeout=60)
        hook = delivered[0]
        assert verify(WEBHOOK_SECRET, hook.timestamp, hook.body, hook.signature or "")
        envelope = json.loads(hook.body)
        assert envelope["run_id"] == run_id and envelope["status"] == "completed"
        assert envelope["output"] == "Simulated reply to: ping"
    finally:
        await connector.stop()
        await worker.stop()
        await receiver.stop()


def _async(check: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def wrapped() -> Any:
        return check()

    return wrapped
