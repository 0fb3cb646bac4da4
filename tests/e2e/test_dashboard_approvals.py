"""Approving a waiting tool call from the dashboard, in headless chromium: a real worker
parks the run on `ferry.approvals`, a real API server (with the approvals book and desk
`ferry api` starts) shows it on /ui/approvals, the click sends it back, and the run
completes having called the tool once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions

from app.api import ApiServices, ApiStore, create_key
from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply, ToolCall, ToolCallsReply
from app.engine import EngineSettings
from app.observability.history import HistorySettings, HistoryStore
from app.observability.history.projector import HistoryProjector
from app.project.project import Project
from app.streams import StreamSettings, Submitter, TopicNames, Worker
from app.streams.approvals import Approvals, ApprovalService
from tests.e2e.test_api import history
from tests.e2e.test_dashboard import WAIT_S, _log_in, _recorded, _wait, api_server, artifacts, browser
from tests.e2e.test_dashboard import pytestmark as dashboard_marks
from tests.integration import conftest as services_fixtures
from tests.integration.kafka_helpers import unique
from tests.integration.streams import conftest as streams_fixtures
from tests.integration.streams.conftest import llm_agent, write_project

pytestmark = dashboard_marks  # integration, and chromium with its chromedriver

dev_stack = services_fixtures.dev_stack
kafka_bootstrap = services_fixtures.kafka_bootstrap
prefix = streams_fixtures.prefix
names = streams_fixtures.names
__all__ = ["artifacts", "browser", "history"]

REFUNDS = '''
from pathlib import Path

LEDGER = Path(__file__).with_name("ledger.txt")


def refund(order_id: str, amount: float) -> dict:
    """Refund an order (one ledger line per refund made)."""
    with LEDGER.open("a") as ledger:
        ledger.write(f"{order_id} {amount}\\n")
    return {"refunded": amount}
'''


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "project"
    (root / "tools").mkdir(parents=True)
    (root / "tools" / "orders.py").write_text(REFUNDS)
    desk = llm_agent(tools=["orders.refund"], approval={"tools": ["orders.refund"], "message": "Refunds need a human"})
    return write_project(root, {"desk": desk})


@pytest.fixture
async def sim() -> AsyncIterator[LLMSimulator]:
    rules = [
        Rule(match=Match(has_tool_result="refund"), reply=TextReply(text="refund handled")),
        Rule(
            match=Match(last_user_contains="refund"),
            reply=ToolCallsReply(calls=[ToolCall(name="refund", arguments={"order_id": "A1", "amount": 80}, id="c1")]),
        ),
    ]
    async with LLMSimulator(rules) as simulator:
        yield simulator


@pytest.fixture
async def api(
    kafka_bootstrap: str, names: TopicNames, project: Project, history: HistoryStore, sim: LLMSimulator
) -> AsyncIterator[tuple[str, ApiStore]]:
    settings = StreamSettings(
        bootstrap=kafka_bootstrap, app_id=unique("ui-appr"), topic_prefix=names.prefix, emit_traces=True
    )
    service = ApprovalService(kafka_bootstrap, project, names, settings.app_id, replication=1)
    worker = Worker(
        project,
        settings,
        engine_settings=EngineSettings(llm_base_url=sim.base_url),
        services=[service],
    )
    await worker.start()
    projector = HistoryProjector(kafka_bootstrap, names, HistorySettings(group_id=unique("ui-hist")), store=history)
    await projector.start()
    approvals = Approvals(kafka_bootstrap, project, names, replication=1)
    await approvals.start()
    store = ApiStore(history.engine)
    services = ApiServices(
        project=project,
        history=history,
        store=store,
        open_sink=lambda: Submitter(kafka_bootstrap, project, names),
        approvals=approvals,
    )
    try:
        async with api_server(services) as url:
            yield url, store
    finally:
        await approvals.stop()
        await projector.stop()
        await worker.stop()


async def test_a_waiting_tool_call_is_approved_from_the_dashboard_and_runs_once(
    api: tuple[str, ApiStore], project: Project, history: HistoryStore, browser: WebDriver, artifacts: Path
) -> None:
    base, store = api
    acme = create_key(store, "acme").token
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        posted = await client.post(
            "/v1/agents/desk/runs",
            json={"input": {"message": "please refund order A1"}},
            headers={"Authorization": f"Bearer {acme}"},
        )
        assert posted.status_code == 202, posted.text
    run_id = posted.json()["run_id"]
    globex = create_key(store, "globex").token

    def in_the_browser() -> None:
        driver = browser
        _log_in(driver, base, globex)
        driver.get(f"{base}/ui/approvals")
        assert run_id not in driver.page_source, "another tenant's waiting call is not shown"
        driver.delete_all_cookies()
        _log_in(driver, base, acme)

        def shows_the_call(d: WebDriver) -> bool:
            d.get(f"{base}/ui/approvals")
            return bool(d.find_elements(By.CSS_SELECTOR, f"li.approval[data-run='{run_id}']"))

        _wait(driver, shows_the_call, "the waiting tool call")
        card = driver.find_element(By.CSS_SELECTOR, f"li.approval[data-run='{run_id}']")
        assert "refund" in card.text and '"amount": 80' in card.text and "Refunds need a human" in card.text
        driver.save_screenshot(str(artifacts / "approvals.png"))
        card.find_element(By.CSS_SELECTOR, "button.approve").click()
        _wait(driver, expected_conditions.alert_is_present(), "the confirmation").accept()
        _wait(driver, lambda d: "notice=approved" in d.current_url, "the approval notice")

    await asyncio.to_thread(in_the_browser)
    await _recorded(history, [run_id], timeout=WAIT_S * 2)
    run = await asyncio.to_thread(history.run, run_id)
    assert run is not None and run.status == "completed" and run.output == "refund handled"
    assert (project.root / "tools" / "ledger.txt").read_text().splitlines() == ["A1 80"]
