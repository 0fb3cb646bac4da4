"""`POST /v1/runs/{id}/cancel` as a client meets it: a real server, broker, worker and history."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply
from app.observability.history import HistorySettings, HistoryStore
from app.observability.history.projector import HistoryProjector
from app.project.project import Project
from app.streams import TopicNames
from tests.e2e import test_api as api_fixtures
from tests.integration import conftest as services_fixtures
from tests.integration.kafka_helpers import unique, wait_for
from tests.integration.streams import conftest as streams_fixtures
from tests.integration.streams.conftest import WorkerFactory

pytestmark = pytest.mark.integration

dev_stack = services_fixtures.dev_stack
kafka_bootstrap = services_fixtures.kafka_bootstrap
prefix = streams_fixtures.prefix
names = streams_fixtures.names
make_worker = streams_fixtures.make_worker
project = api_fixtures.project
history = api_fixtures.history
serve_api = api_fixtures.serve_api
_until = api_fixtures._until


async def test_a_running_run_is_cancelled_by_its_tenant_only_and_a_finished_one_is_409(
    kafka_bootstrap: str,
    names: TopicNames,
    project: Project,
    history: HistoryStore,
    make_worker: WorkerFactory,
    serve_api: api_fixtures.ServeApi,
) -> None:
    slow = Rule(match=Match(last_user_contains="slow"), reply=TextReply(text="too late"), delay_ms=60_000)
    async with LLMSimulator([slow], record_requests=False) as sim:
        worker = make_worker(project, sim.base_url)
        await worker.start()
        projector = HistoryProjector(
            kafka_bootstrap, names, HistorySettings(group_id=unique("api-hist")), store=history
        )
        await projector.start()
        try:
            api = await serve_api()
            acme, globex = api.key("acme"), api.key("globex")
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
                posted = await client.post("/v1/agents/echo/runs", json={"input": {"message": "slow"}}, headers=acme)
                assert posted.status_code == 202, posted.text
                run_id = posted.json()["run_id"]
                await wait_for(lambda: sim.calls_total == 1, 60, what="the run to call the model")

                other = await client.post(f"/v1/runs/{run_id}/cancel", headers=globex)
                assert other.status_code == 404 and other.json()["type"].endswith("/run-not-found")
                missing = await client.post("/v1/runs/no-such-run/cancel", headers=acme)
                assert missing.status_code == 404

                cancel = await client.post(f"/v1/runs/{run_id}/cancel", headers=acme)
                assert cancel.status_code == 202, cancel.text
                assert cancel.json() == {"run_id": run_id, "status": "cancelling"}

                async def cancelled() -> dict[str, Any] | None:
                    body = (await client.get(f"/v1/runs/{run_id}", headers=acme)).json()
                    return body if body["status"] != "queued" else None

                run = await _until(cancelled, timeout=30)
                assert run["status"] == "cancelled"
                assert run["error"]["category"] == "cancelled"

                again = await client.post(f"/v1/runs/{run_id}/cancel", headers=acme)
                assert again.status_code == 409
                assert again.headers["content-type"].startswith("application/problem+json")
                assert again.json()["type"].endswith("/run-finished") and again.json()["status"] == 409
                assert again.json()["run_status"] == "cancelled"
            assert sim.calls_total == 1
        finally:
            await projector.stop()
            await worker.stop()
