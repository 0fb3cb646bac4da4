"""The dashboard in a real browser: Debian's headless chromium, driven by Selenium through
its chromedriver, against a real `ferry api` server (uvicorn on a loopback port), a real
worker running the LLM simulator and the history projector, on the shared broker.

Screenshots of each page land in `$FERRY_TEST_ARTIFACTS/dashboard/` (default: the
temporary folder's `ferry-test-artifacts/`), for a person (or CI) to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.api import ApiServices, ApiSettings, ApiStore, create_app, create_key
from app.api.services import Broker
from app.contracts.runs import document_input
from app.devstack.llm_sim import FaultKind, FaultReply, LLMSimulator, Match, Rule, TextReply
from app.observability.history import HistorySettings, HistoryStore
from app.observability.history.projector import HistoryProjector
from app.project.project import Project
from app.streams import Submitter, TopicNames
from tests.e2e.test_api import Api, _free_port, history
from tests.integration import conftest as services_fixtures
from tests.integration.kafka_helpers import unique
from tests.integration.streams import conftest as streams_fixtures
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (shutil.which("chromium") and shutil.which("chromedriver")),
        reason="needs Debian's chromium and chromium-driver (scripts/install-system-deps.sh)",
    ),
]

dev_stack = services_fixtures.dev_stack
kafka_bootstrap = services_fixtures.kafka_bootstrap
prefix = streams_fixtures.prefix
names = streams_fixtures.names
simulator = streams_fixtures.simulator
make_worker = streams_fixtures.make_worker
__all__ = ["history"]  # a fixture of the API's e2e suite, used as it is

ARTIFACTS = Path(os.environ.get("FERRY_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "ferry-test-artifacts")
WAIT_S = 30


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """echo: three attempts per LLM step, 50 ms apart; a price, so runs have a cost; a
    daily limit per tenant, so the cost page has spend to judge; rate-limited runs kept on
    its failed-runs topic, for the failures page to replay."""
    config = {
        "models": {"openai/sim-model": {"input_cost_per_token": 0.0001, "output_cost_per_token": 0.0002}},
        "spend_limits": [{"scope": "tenant", "period": "day", "limit_usd": 0.01}],
        "durability": {"agents": {"echo": {"failed_runs": ["rate_limit"]}}},
    }
    agent = llm_agent(max_concurrent_runs=4, retry_options={"attempts": 3, "initial_delay": 0.05, "max_delay": 1})
    return write_project(tmp_path / "project", {"echo": agent}, config)


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    folder = ARTIFACTS / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download a browser
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def stack(
    kafka_bootstrap: str,
    names: TopicNames,
    project: Project,
    history: HistoryStore,
    simulator: LLMSimulator,
    make_worker: WorkerFactory,
) -> AsyncIterator[Api]:
    """A worker (the simulator as its model, traces on), the history projector, and the
    API as `ferry api` builds it: its producer, and its broker for replays and the DLQ."""
    simulator.set_rules(
        [
            Rule(name="slow", match=Match(last_user_contains="slow"), reply=TextReply(text="late"), delay_ms=60_000),
            Rule(
                name="limited",
                match=Match(last_user_contains="explode"),
                reply=FaultReply(
                    fault=FaultKind.RATE_LIMIT, retry_after_s=0.05, message="Rate limit reached (simulated)"
                ),
            ),
        ]
    )
    worker = make_worker(project, simulator.base_url, emit_traces=True)
    await worker.start()
    projector = HistoryProjector(kafka_bootstrap, names, HistorySettings(group_id=unique("ui-hist")), store=history)
    await projector.start()
    store = ApiStore(history.engine)
    services = ApiServices(
        project=project,
        history=history,
        store=store,
        open_sink=lambda: Submitter(kafka_bootstrap, project, names),
        broker=Broker(kafka_bootstrap, names),
    )
    try:
        async with api_server(services) as url:
            yield Api(url, history, store)
    finally:
        await projector.stop()
        await worker.stop()


async def _submit(client: httpx.AsyncClient, token: str, message: str, **more: Any) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    body = {"input": {"message": message, **more}}
    posted = await client.post("/v1/agents/echo/runs", json=body, headers=headers)
    assert posted.status_code == 202, posted.text
    return str(posted.json()["run_id"])


async def _recorded(history: HistoryStore, run_ids: list[str], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while True:
            found = [await asyncio.to_thread(history.run, run_id) for run_id in run_ids]
            spans = await asyncio.to_thread(history.spans, run_ids)
            if all(found) and {s.run_id for s in spans if s.kind == "run"} >= set(run_ids):
                return
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def api_server(services: ApiServices) -> AsyncIterator[str]:
    """`create_app(services)` on uvicorn on a free loopback port, for the pages that need
    services the API suite's `serve_api` does not build (approvals, deployments)."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(ApiSettings(), services), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                assert not task.done(), "the API server stopped while starting"
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


def _wait(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    try:
        return WebDriverWait(driver, WAIT_S).until(condition)
    except TimeoutException:
        raise AssertionError(
            f"the page never showed {what}: {driver.current_url}\n{driver.page_source[:3000]}"
        ) from None


def _log_in(driver: WebDriver, base: str, token: str) -> None:
    driver.get(f"{base}/ui/runs")
    _wait(driver, expected_conditions.url_contains("/ui/login"), "the login page")
    field = driver.switch_to.active_element  # the key field has the focus: type and press Enter
    assert field.get_attribute("id") == "key"
    field.send_keys(token, Keys.ENTER)
    _wait(driver, expected_conditions.presence_of_element_located((By.ID, "runs-table")), "the runs table")


def _no_horizontal_scroll(driver: WebDriver) -> None:
    widths = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths} at {driver.current_url}"


def _row_ids(driver: WebDriver) -> list[str]:
    links = driver.find_elements(By.CSS_SELECTOR, "#run-rows a[href^='/ui/runs/']")
    return [str(link.get_attribute("href")).rsplit("/", 1)[1] for link in links]


async def test_on_call_finds_a_failed_run_by_category_and_sees_its_failing_step(
    stack: Api, browser: WebDriver, artifacts: Path
) -> None:
    acme = create_key(stack.store, "acme").token
    globex = create_key(stack.store, "globex").token
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        ok = [await _submit(client, acme, f"hello {n}") for n in range(2)]
        failed = await _submit(client, acme, "please explode")
        foreign = await _submit(client, globex, "explode for globex")
    await _recorded(stack.history, [*ok, failed, foreign])

    def in_the_browser() -> None:
        driver, base = browser, stack.url
        _log_in(driver, base, acme)
        listed = _row_ids(driver)
        assert set(listed) == {*ok, failed}, "acme's list shows its three runs and no other tenant's"
        driver.save_screenshot(str(artifacts / "runs.png"))
        ActionChains(driver).send_keys(Keys.TAB).perform()  # the keyboard's first stop skips the navigation
        assert driver.switch_to.active_element.text == "Skip to content"
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        _wait(driver, lambda d: d.switch_to.active_element.get_attribute("id") == "main", "focus on the content")

        Select(driver.find_element(By.NAME, "category")).select_by_value("rate_limit")
        driver.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
        _wait(
            driver, lambda d: "category=rate_limit" in d.current_url and _row_ids(d) == [failed], "the failed run alone"
        )
        driver.find_element(By.CSS_SELECTOR, f"#run-rows a[href='/ui/runs/{failed}']").click()

        failing = _wait(
            driver, expected_conditions.presence_of_element_located((By.ID, "failing-step")), "the failing step"
        )
        assert driver.find_element(By.ID, "run-category").text == "rate_limit"
        assert "LLM call" in failing.text and "3 of 3 attempts" in failing.text and "rate_limit" in failing.text
        assert failing.value_of_css_property("outline-style") == "solid"
        steps = driver.find_elements(By.CSS_SELECTOR, "#waterfall li.step")
        kinds = [step.get_attribute("data-kind") for step in steps]
        assert kinds.count("llm_attempt") == 3 and kinds.count("retry_wait") == 2, kinds
        assert all(
            s.get_attribute("data-status") == "error" for s in steps if s.get_attribute("data-kind") == "llm_attempt"
        )
        assert any("$" in step.text for step in steps), "a step shows its cost"
        bars = driver.find_elements(By.CSS_SELECTOR, "#waterfall .step-bar rect")
        assert len(bars) == len(steps) and len({bar.get_attribute("x") for bar in bars}) > 2, (
            "steps sit along the time axis"
        )
        driver.find_element(By.LINK_TEXT, "Go to the failing step").send_keys(Keys.ENTER)
        _wait(
            driver,
            lambda d: d.switch_to.active_element.get_attribute("id") == "failing-step",
            "focus on the failing step",
        )
        driver.save_screenshot(str(artifacts / "run-failed.png"))

        driver.get(f"{base}/ui/runs/{foreign}")
        assert "No such run" in driver.page_source and foreign not in driver.find_element(By.TAG_NAME, "main").text
        driver.get(f"{base}/ui/runs?tenant=globex")
        assert foreign not in _row_ids(driver)

        driver.get(f"{base}/ui/cost?range=24h")
        total = _wait(
            driver,
            lambda d: d.execute_script(
                "const c = document.getElementById('chart-cost').chart;"
                "return c ? c.data.datasets.reduce((s, ds) => s + ds.data.reduce((a, b) => a + b, 0), 0) : null"
            ),
            "a cost chart with data",
        )
        assert total > 0
        assert "tenant 'acme'" in driver.find_element(By.ID, "limits").text
        driver.save_screenshot(str(artifacts / "cost.png"))
        driver.get(f"{base}/ui/failures")
        _wait(
            driver, lambda d: d.execute_script("return !!document.getElementById('chart-failures').chart"), "the chart"
        )
        assert "rate_limit" in driver.find_element(By.ID, "failure-totals").text
        driver.save_screenshot(str(artifacts / "failures.png"))

    await asyncio.to_thread(in_the_browser)


async def test_a_running_run_appears_live_and_is_cancelled_from_its_page(
    stack: Api, browser: WebDriver, artifacts: Path
) -> None:
    acme = create_key(stack.store, "acme").token
    await asyncio.to_thread(_log_in, browser, stack.url, acme)  # the list is open before the run exists
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        slow = await _submit(client, acme, "slow answer please")

    def in_the_browser() -> None:
        driver = browser
        link = _wait(
            driver,
            expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, f"#live-list a[href='/ui/runs/{slow}']")),
            "the new run in the in-flight list",
        )
        link.click()
        button = _wait(driver, expected_conditions.element_to_be_clickable((By.ID, "cancel-run")), "a cancel button")
        button.click()
        _wait(driver, expected_conditions.alert_is_present(), "the confirmation").accept()
        _wait(driver, lambda d: "notice=cancel-sent" in d.current_url, "the cancel notice")

    await asyncio.to_thread(in_the_browser)
    await _recorded(stack.history, [slow])
    run = await asyncio.to_thread(stack.history.run, slow)
    assert run is not None and run.status == "cancelled"

    def cancelled_in_the_list() -> None:
        browser.get(f"{stack.url}/ui/runs")
        row = browser.find_element(By.CSS_SELECTOR, f"#run-rows a[href='/ui/runs/{slow}']")
        assert "cancelled" in row.find_element(By.XPATH, "./ancestor::tr").text

    await asyncio.to_thread(cancelled_in_the_list)

    # The open list takes a finished run in by itself: no reload (the page's marker stays).
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        other = await _submit(client, acme, "slow again")

        def watching() -> None:
            browser.get(f"{stack.url}/ui/runs")
            _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#live-list a[href='/ui/runs/{other}']"), "it")
            assert not browser.find_elements(By.CSS_SELECTOR, f"#run-rows a[href='/ui/runs/{other}']")
            browser.execute_script("window.stillTheSamePage = true")

        await asyncio.to_thread(watching)
        cancelled = await client.post(f"/v1/runs/{other}/cancel", headers={"Authorization": f"Bearer {acme}"})
        assert cancelled.status_code == 202, cancelled.text

    def refreshed_by_itself() -> None:
        _wait(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, f"#run-rows a[href='/ui/runs/{other}']"),
            "the finished run in the table",
        )
        assert browser.execute_script("return window.stillTheSamePage === true"), "the page was not reloaded"
        assert not browser.find_elements(By.CSS_SELECTOR, f"#live-list a[href='/ui/runs/{other}']")

    await asyncio.to_thread(refreshed_by_itself)


async def test_pages_fit_a_phone_and_read_in_dark_mode(stack: Api, browser: WebDriver, artifacts: Path) -> None:
    acme = create_key(stack.store, "acme").token
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        failed = await _submit(client, acme, "explode on a phone")
    await _recorded(stack.history, [failed])

    def in_the_browser() -> None:
        driver = browser
        _log_in(driver, stack.url, acme)
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
        )
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
        )
        for name, path in (
            ("runs", "/ui/runs"),
            ("run", f"/ui/runs/{failed}"),
            ("cost", "/ui/cost"),
            ("failures", "/ui/failures"),
            ("deployments", "/ui/deployments"),
            ("approvals", "/ui/approvals"),
        ):
            driver.get(stack.url + path)
            _wait(driver, expected_conditions.presence_of_element_located((By.ID, "main")), name)
            _no_horizontal_scroll(driver)
            background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
            text = driver.execute_script("return getComputedStyle(document.body).color")
            assert _luminance(background) < 0.2 < _luminance(text), (name, background, text)
            driver.save_screenshot(str(artifacts / f"phone-dark-{name}.png"))

    await asyncio.to_thread(in_the_browser)


def _luminance(css_color: str) -> float:
    """Relative luminance (0 black … 1 white) of `rgb(r, g, b)` / `rgba(…)`."""
    parts = css_color[css_color.index("(") + 1 : css_color.index(")")].split(",")
    r, g, b = (int(float(p)) / 255 for p in parts[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


async def test_a_failed_run_is_replayed_from_its_page_and_from_the_failures_list(
    stack: Api, browser: WebDriver, artifacts: Path
) -> None:
    acme = create_key(stack.store, "acme").token
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        pdf = document_input("invoice-7781.pdf", b"%PDF-1.4 " + b"x" * 3000)["files"]
        failed = await _submit(client, acme, "explode, then replay me", files=pdf)
    await _recorded(stack.history, [failed])

    def replay_from_the_run_page() -> str:
        driver = browser
        _log_in(driver, stack.url, acme)
        driver.get(f"{stack.url}/ui/runs/{failed}")
        driver.find_element(By.ID, "load-input").click()
        shown = _wait(driver, expected_conditions.presence_of_element_located((By.ID, "input-value")), "the input")
        assert "explode, then replay me" in shown.text and "invoice-7781.pdf" in shown.text
        documents = driver.find_element(By.ID, "input-documents").text
        assert "invoice-7781.pdf" in documents and "application/pdf" in documents and "3,009 bytes" in documents
        assert pdf[0]["data"][:40] not in driver.page_source, "a document is never shown as base64"
        driver.find_element(By.ID, "replay-run").click()
        _wait(driver, expected_conditions.alert_is_present(), "the confirmation").accept()
        _wait(driver, lambda d: "notice=replayed" in d.current_url, "the replayed run's page")
        new_id = driver.current_url.split("/ui/runs/")[1].split("?")[0]
        assert new_id != failed

        def finished(d: WebDriver) -> bool:
            d.refresh()
            return bool(d.find_elements(By.ID, "run-category"))

        _wait(driver, finished, "the replay's result")
        assert f"/ui/runs/{failed}" in driver.find_element(By.CSS_SELECTOR, ".facts").get_attribute("innerHTML")
        return new_id

    replayed = await asyncio.to_thread(replay_from_the_run_page)
    run = await asyncio.to_thread(stack.history.run, replayed)
    assert run is not None and run.trigger_metadata["replay_of"] == failed and run.tenant == "acme"

    def replay_from_the_failures_list() -> str:
        driver = browser

        def listed(d: WebDriver) -> bool:
            d.get(f"{stack.url}/ui/failures?range=24h")
            return bool(d.find_elements(By.CSS_SELECTOR, f"#entries tr[data-ref='{failed}']"))

        _wait(driver, listed, "the failed run on agent.echo.failed")
        driver.find_element(By.CSS_SELECTOR, f"#entries tr[data-ref='{failed}'] input[type=checkbox]").click()
        driver.find_element(By.ID, "dry-run").click()
        report = _wait(driver, expected_conditions.presence_of_element_located((By.ID, "replay-report")), "the dry run")
        assert "Dry run" in report.text and "would run again" in report.text and failed in report.text
        driver.save_screenshot(str(artifacts / "failures-dry-run.png"))
        driver.find_element(By.CSS_SELECTOR, f"#entries tr[data-ref='{failed}'] input[type=checkbox]").click()
        driver.find_element(By.ID, "replay-selected").click()
        _wait(driver, expected_conditions.alert_is_present(), "the confirmation").accept()
        report = _wait(driver, expected_conditions.presence_of_element_located((By.ID, "replay-report")), "the replay")
        assert "Replayed." in report.text
        return str(report.find_element(By.CSS_SELECTOR, "a.mono").text)

    from_list = await asyncio.to_thread(replay_from_the_failures_list)
    await _recorded(stack.history, [from_list])
    again = await asyncio.to_thread(stack.history.run, from_list)
    assert again is not None and again.trigger_metadata["replay_of"] == failed
