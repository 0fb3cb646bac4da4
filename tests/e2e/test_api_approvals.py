"""Approvals through the HTTP API: a tenant sees and decides only its own waiting runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.contracts import RunStatus
from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply, ToolCall, ToolCallsReply
from app.engine import EngineSettings
from app.project.project import Project
from app.streams import ResultWatcher, StreamSettings, TopicNames, Worker
from app.streams.approvals import Approvals, ApprovalService
from tests.e2e import test_api as api_fixtures
from tests.integration import conftest as services_fixtures
from tests.integration.kafka_helpers import unique, wait_for
from tests.integration.streams import conftest as streams_fixtures
from tests.integration.streams.conftest import llm_agent, write_project

pytestmark = pytest.mark.integration

dev_stack = services_fixtures.dev_stack
kafka_bootstrap = services_fixtures.kafka_bootstrap
prefix = streams_fixtures.prefix
names = streams_fixtures.names
history = api_fixtures.history
serve_api = api_fixtures.serve_api


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "orders.py").write_text(
        'def refund(order_id: str, amount: float) -> dict:\n    """Refund an order."""\n    return {"refunded": amount}\n'
    )
    desk = llm_agent(tools=["orders.refund"], approval={"tools": ["orders.refund"], "message": "Refunds need a person"})
    return write_project(tmp_path, {"echo": desk})


@pytest.fixture
async def approvals(kafka_bootstrap: str, project: Project, names: TopicNames) -> AsyncIterator[Approvals]:
    made = Approvals(kafka_bootstrap, project, names, replication=1)
    await made.start()
    yield made
    await made.stop()


async def test_a_tenant_lists_and_approves_its_own_waiting_run_and_no_other(
    kafka_bootstrap: str,
    names: TopicNames,
    project: Project,
    approvals: Approvals,
    serve_api: api_fixtures.ServeApi,
) -> None:
    rules = [
        Rule(match=Match(has_tool_result="refund"), reply=TextReply(text="refunded")),
        Rule(reply=ToolCallsReply(calls=[ToolCall(name="refund", arguments={"order_id": "A1", "amount": 9})])),
    ]
    async with LLMSimulator(rules) as sim:
        app_id = unique("ferry-api-approvals")
        settings = StreamSettings(
            bootstrap=kafka_bootstrap, app_id=app_id, topic_prefix=names.prefix, emit_traces=False
        )
        service = ApprovalService(kafka_bootstrap, project, names, app_id, replication=1)
        worker = Worker(
            project, settings, engine_settings=EngineSettings(llm_base_url=sim.base_url), services=[service]
        )
        await worker.start()
        try:
            api = await serve_api(approvals=approvals)
            acme, globex = api.key("acme"), api.key("globex")
            async with (
                httpx.AsyncClient(base_url=api.url, timeout=30) as client,
                ResultWatcher(kafka_bootstrap, names) as watcher,
            ):
                posted = await client.post(
                    "/v1/agents/echo/runs", json={"input": {"message": "refund A1"}}, headers=acme
                )
                run_id = posted.json()["run_id"]

                async def listed() -> bool:
                    page = await client.get("/v1/approvals", headers=acme)
                    return [a["run_id"] for a in page.json()["approvals"]] == [run_id]

                await wait_for(listed, 60, what="the run in acme's approvals")
                [waiting] = (await client.get("/v1/approvals", headers=acme)).json()["approvals"]
                assert (waiting["tool"], waiting["arguments"], waiting["message"]) == (
                    "refund", {"order_id": "A1", "amount": 9}, "Refunds need a person",
                )  # fmt: skip
                assert (await client.get("/v1/approvals", headers=globex)).json() == {"approvals": []}
                refused = await client.post(f"/v1/approvals/{run_id}/approve", headers=globex)
                assert refused.status_code == 404, refused.text
                no_reason = await client.post(f"/v1/approvals/{run_id}/reject", json={}, headers=acme)
                assert no_reason.status_code == 422

                approved = await client.post(f"/v1/approvals/{run_id}/approve", json={"reason": "ok"}, headers=acme)
                assert approved.status_code == 200, approved.text
                assert approved.json()["status"] == "approved" and approved.json()["decided_by"].startswith("api-key:")
                again = await client.post(f"/v1/approvals/{run_id}/approve", headers=acme)
                assert again.status_code == 409
                result = (await watcher.wait_for([run_id], timeout=60))[run_id]
            assert result.status == RunStatus.COMPLETED and result.output == "refunded"
        finally:
            await worker.stop()
