"""Rolling a deployment back from the dashboard, in headless chromium, against a real API
server reading and writing the real `ferry.deployments` topic on the shared broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions

from app.api import ApiServices, ApiStore, create_key
from app.api.services import Broker
from app.contracts import RunResult, RunStatus
from app.contracts.errors import ErrorCategory
from app.contracts.runs import RunError
from app.deploy.log import DeploymentLog
from app.deploy.records import ActiveState, Deployment, GitSource
from app.observability.history import HistoryStore
from app.project.project import Project
from app.streams import Submitter, TopicNames
from tests.e2e.test_api import history
from tests.e2e.test_dashboard import _log_in, _wait, api_server, artifacts, browser
from tests.e2e.test_dashboard import pytestmark as dashboard_marks
from tests.integration import conftest as services_fixtures
from tests.integration.streams import conftest as streams_fixtures
from tests.integration.streams.conftest import llm_agent, write_project

pytestmark = dashboard_marks  # integration, and chromium with its chromedriver

dev_stack = services_fixtures.dev_stack
kafka_bootstrap = services_fixtures.kafka_bootstrap
prefix = streams_fixtures.prefix
names = streams_fixtures.names
__all__ = ["artifacts", "browser", "history"]

V1, V2 = "v1111aaaa2222", "v3333bbbb4444"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return write_project(tmp_path / "project", {"echo": llm_agent()})


@pytest.fixture
async def deployed(kafka_bootstrap: str, names: TopicNames, history: HistoryStore) -> AsyncIterator[None]:
    """v1 then v2 deployed (v2 active, v1 the rollback target); runs served by each, v2's half failed."""
    now = datetime.now(UTC)
    async with DeploymentLog(kafka_bootstrap, names, replication=1) as log:
        for version, commit, message, age in ((V1, "a" * 40, "first <b>release</b>", 2), (V2, "b" * 40, "second", 1)):
            git = GitSource(commit=commit, author="Ada", message=message)
            deployment = Deployment.of(version, {"agents/echo.yaml": b"name: echo"}, message=message, git=git)
            await log.publish(deployment.model_copy(update={"created_at": now - timedelta(hours=age)}))
        await log.set_state(ActiveState().activate(V1, "deploy").activate(V2, "deploy"))
    results = []
    for n, (version, failed) in enumerate([(V1, False), (V1, False), (V2, True), (V2, False)]):
        started = now - timedelta(minutes=10 - n)
        error = RunError(category=ErrorCategory.TOOL_ERROR, message="boom") if failed else None
        results.append(
            RunResult(
                run_id=f"run-{n}", agent="echo", tenant="acme", deployment=version, error=error,
                status=RunStatus.FAILED if failed else RunStatus.COMPLETED,
                started_at=started, ended_at=started + timedelta(seconds=1), duration_ms=1000,
            )
        )  # fmt: skip
    history.write(results)
    yield


async def test_an_admin_rolls_a_deployment_back_from_the_dashboard(
    kafka_bootstrap: str,
    names: TopicNames,
    project: Project,
    history: HistoryStore,
    deployed: None,
    browser: WebDriver,
    artifacts: Path,
) -> None:
    store = ApiStore(history.engine)
    services = ApiServices(
        project=project,
        history=history,
        store=store,
        open_sink=lambda: Submitter(kafka_bootstrap, project, names),
        broker=Broker(kafka_bootstrap, names),
    )
    admin = create_key(store, "ops", admin=True).token
    tenant = create_key(store, "acme").token
    async with api_server(services) as base:

        def in_the_browser() -> None:
            driver = browser
            _log_in(driver, base, tenant)
            driver.get(f"{base}/ui/deployments")
            table = _wait(driver, expected_conditions.presence_of_element_located((By.ID, "deployments")), "versions")
            assert V1 in table.text and V2 in table.text
            assert not driver.find_elements(By.ID, "rollback"), "a tenant's key changes nothing"
            driver.delete_all_cookies()

            _log_in(driver, base, admin)
            driver.get(f"{base}/ui/deployments")
            assert driver.find_element(By.ID, "active-version").text == V2
            v1 = driver.find_element(By.CSS_SELECTOR, f"tr[data-version='{V1}']")
            v2 = driver.find_element(By.CSS_SELECTOR, f"tr[data-version='{V2}']")
            assert "aaaaaaaaaa" in v1.text and "Ada" in v1.text and "first <b>release</b>" in v1.text
            assert "previous" in v1.text and "0.0 %" in v1.text
            assert "active" in v2.text and "50.0 %" in v2.text
            driver.save_screenshot(str(artifacts / "deployments.png"))
            driver.find_element(By.ID, "rollback").click()
            _wait(driver, expected_conditions.alert_is_present(), "the confirmation").accept()
            _wait(driver, lambda d: "notice=rolled-back" in d.current_url, "the rollback notice")
            assert driver.find_element(By.ID, "active-version").text == V1

        await asyncio.to_thread(in_the_browser)

    async with DeploymentLog(kafka_bootstrap, names, replication=1) as log:
        state = (await log.read()).state
    assert state.active == V1 and state.previous == ()
