"""The dashboard's pages through the ASGI app: login, scoping by tenant, the waterfall, escaping, CSRF."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from app.api import ApiStore, create_key
from app.api.store import SubmissionRow
from app.observability.history import HistoryStore
from tests.unit.api.ui.conftest import T0, completed_run, failed_run, log_in


def test_every_page_sends_a_visitor_without_a_session_to_the_login(ui: TestClient) -> None:
    for path in ("/ui/runs", "/ui/runs/abc", "/ui/cost", "/ui/failures"):
        response = ui.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=")
    assert ui.get("/ui/runs/live.json").status_code == 401
    forged = ui.get("/ui/runs", cookies={"ferry_ui": "eyJrZXlfaWQiOiJ4In0.bm9wZQ"}, follow_redirects=False)
    assert forged.status_code == 303


def test_a_wrong_key_is_refused_and_a_good_one_gets_a_strict_http_only_cookie(ui: TestClient, token: str) -> None:
    foreign = ui.post("/ui/login", data={"key": token}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
    wrong = ui.post("/ui/login", data={"key": "fy_nope.nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not valid" in wrong.text
    good = ui.post("/ui/login", data={"key": token, "next": "https://evil.example/"}, follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/ui/runs"
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert token.split(".")[1] not in cookie  # the key's secret never reaches the browser's storage
    page = ui.get("/ui/runs")
    assert page.status_code == 200 and "tenant acme" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_a_revoked_key_ends_its_sessions(ui: TestClient, history: HistoryStore) -> None:
    store = ApiStore(history.engine)
    key = create_key(store, "acme")
    log_in(ui, key.token)
    assert ui.get("/ui/runs", follow_redirects=False).status_code == 200
    store.revoke_key(key.key_id)
    assert ui.get("/ui/runs", follow_redirects=False).status_code == 303


def test_a_tenant_sees_its_runs_only_and_an_admin_sees_all(ui: TestClient, history: HistoryStore) -> None:
    mine = failed_run(history, "acme")
    theirs = failed_run(history, "globex", started=T0 + timedelta(seconds=1))
    store = ApiStore(history.engine)
    log_in(ui, create_key(store, "acme").token)
    listed = ui.get("/ui/runs").text
    assert mine[:8] in listed and theirs[:8] not in listed
    assert ui.get(f"/ui/runs/{theirs}").status_code == 404
    assert ui.get("/ui/runs", params={"tenant": "globex"}).text.count(theirs[:8]) == 0  # the filter cannot widen it
    log_in(ui, create_key(store, "root", admin=True).token)
    both = ui.get("/ui/runs").text
    assert mine[:8] in both and theirs[:8] in both
    only = ui.get("/ui/runs", params={"tenant": "globex"}).text
    assert theirs[:8] in only and mine[:8] not in only


def test_filters_and_cursor_pages_walk_every_run_once(ui: TestClient, history: HistoryStore, token: str) -> None:
    ids = {completed_run(history, started=T0 + timedelta(seconds=i)) for i in range(120)}
    failed = failed_run(history, started=T0 + timedelta(hours=1))
    log_in(ui, token)
    seen: list[str] = []
    url: str | None = "/ui/runs?status=completed"
    while url:
        page = ui.get(url).text
        seen += re.findall(r'href="/ui/runs/([0-9a-f-]{36})"', page.split('id="runs-table"')[1])
        found = re.search(r'href="([^"]+)" rel="next"', page)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == 120 and set(seen) == ids
    by_category = ui.get("/ui/runs", params={"category": "rate_limit"}).text.split('id="runs-table"')[1]
    assert re.findall(r'href="/ui/runs/([0-9a-f-]{36})"', by_category) == [failed]


def test_a_failed_run_shows_its_waterfall_with_the_failing_step_retries_and_cost(
    ui: TestClient, history: HistoryStore, token: str
) -> None:
    run_id = failed_run(history)
    log_in(ui, token)
    page = ui.get(f"/ui/runs/{run_id}").text
    steps = re.findall(r'<li class="step ([^"]*)"', page)
    assert len(steps) == 7  # run, LLM call, three attempts, two waits
    assert sum("failing" in s for s in steps) == 1
    failing = page.split('id="failing-step"')[1].split("</li>")[0]
    assert "LLM call openai/sim-model" in failing and "rate_limit" in failing and "3 of 3 attempts" in failing
    assert page.count("retry wait 0.3") == 2 and "after attempt 1: rate_limit" in page
    assert "3 of 3 attempts" in page and "$0.001200" in page
    # The error message is the model provider's text: shown, never run.
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_documents_in_an_output_are_shown_by_name_and_type_not_as_base64(
    ui: TestClient, history: HistoryStore, token: str
) -> None:
    data = "JVBERi0xLjQK" * 400
    run_id = completed_run(
        history, output={"files": [{"name": "invoice.pdf", "mime_type": "application/pdf", "data": data}]}
    )
    log_in(ui, token)
    page = ui.get(f"/ui/runs/{run_id}").text
    assert "invoice.pdf" in page and "application/pdf" in page
    assert data[:200] not in page


def test_cancel_needs_the_session_token_and_reaches_the_sink(
    ui: TestClient, history: HistoryStore, token: str, sink: object
) -> None:
    store = ApiStore(history.engine)
    store.claim(
        SubmissionRow(
            run_id="r-1",
            tenant="acme",
            agent="echo",
            idempotency_key=None,
            body_sha256="x",
            created_at=T0.now(T0.tzinfo),
            queued=True,
        )
    )
    cancels: list[str] = []

    async def cancel(run_id: str, *, tenant: str | None = None, source: str = "cli") -> None:
        cancels.append(run_id)

    sink.cancel = cancel  # type: ignore[attr-defined]
    log_in(ui, token)
    page = ui.get("/ui/runs/r-1").text
    assert 'id="cancel-run"' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    refused = ui.post("/ui/runs/r-1/cancel", data={"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403 and cancels == []
    cross = ui.post(
        "/ui/runs/r-1/cancel",
        data={"csrf": csrf.group(1)},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross.status_code == 403 and cancels == []
    sent = ui.post("/ui/runs/r-1/cancel", data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert sent.status_code == 303 and cancels == ["r-1"]
    live = ui.get("/ui/runs/live.json").json()["in_flight"]
    assert [r["run_id"] for r in live] == ["r-1"] and live[0]["state"] == "queued"


def test_cost_and_failures_pages_chart_the_history_and_judge_limits(
    ui: TestClient, history: HistoryStore, token: str
) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(microsecond=0)
    completed_run(history, started=now - timedelta(minutes=5), cost=0.5)
    failed_run(history, started=now - timedelta(minutes=3))
    log_in(ui, token)
    cost = ui.get("/ui/cost", params={"range": "24h"}).text
    assert 'id="chart-data"' in cost and "echo" in cost and "$0.5012" in cost
    failures = ui.get("/ui/failures").text
    assert "rate_limit" in failures and "show runs" in failures


def test_a_pipeline_shows_its_stages_under_it_and_a_stage_links_back(
    ui: TestClient, history: HistoryStore, token: str
) -> None:
    from app.contracts import RunResult, RunStatus, SpanKind
    from app.contracts.runs import PipelineContext
    from tests.unit.api.ui.conftest import span

    root = "pipe-1"
    results, spans = [], []
    for stage, agent in enumerate(("extractor", "validator")):
        run_id = f"stage-{stage}"
        started = T0 + timedelta(milliseconds=100 * stage)
        ctx = PipelineContext(pipeline="invoices", stage=stage, root_run_id=root)
        results.append(
            RunResult(run_id=run_id, agent=agent, status=RunStatus.COMPLETED, tenant="acme", pipeline=ctx,
                      started_at=started, ended_at=started + timedelta(milliseconds=90), duration_ms=90)
        )  # fmt: skip
        spans.append(span(run_id, SpanKind.RUN, agent, 0, 90, started=started))
    whole = PipelineContext(pipeline="invoices", stage=1, root_run_id=root)
    results.append(
        RunResult(run_id=root, agent="invoices", status=RunStatus.COMPLETED, tenant="acme", pipeline=whole,
                  started_at=T0, ended_at=T0 + timedelta(milliseconds=190), duration_ms=190)
    )  # fmt: skip
    history.write(results, spans)
    log_in(ui, token)
    page = ui.get(f"/ui/runs/{root}").text
    stages = page.split('id="stages-title"')[1].split("</section>")[0]
    assert stages.index("stage 0 · extractor") < stages.index("stage 1 · validator")
    assert 'href="/ui/runs/stage-1"' in stages
    assert page.count('<li class="step kind-run') == 2  # each stage's steps on the pipeline's one axis
    stage_page = ui.get("/ui/runs/stage-1").text
    assert f'href="/ui/runs/{root}">pipeline invoices' in stage_page


def test_pages_reading_kafka_say_so_when_the_broker_does_not_answer(ui: TestClient, token: str) -> None:
    from app.api.services import Broker
    from app.streams import TopicNames

    ui.app.state.services.broker = Broker("127.0.0.1:1", TopicNames("t."))  # type: ignore[attr-defined]
    log_in(ui, token)
    for path in ("/ui/failures", "/ui/deployments"):
        page = ui.get(path)
        assert page.status_code == 200 and "Kafka did not answer. Try again shortly." in page.text, path
        assert "127.0.0.1:1" not in page.text  # a tenant's key is not told where the broker is
