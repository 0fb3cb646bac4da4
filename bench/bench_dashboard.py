"""How fast the dashboard's pages answer with 100,000 runs in the run history (SQLite).

    .venv/bin/python bench/bench_dashboard.py [--runs 100000] [--repeat 20] [--db PATH]

Fills a SQLite history (`HistoryStore.write`, batches of 2,000, as the projector
writes) with `--runs` finished runs over the last 30 days: three tenants (60/30/10 %),
five agents, three deployments, 6 % failed (rate_limit the most common category,
tool_timeout a rare one at 0.3 %), one `llm_call` span each, and one API submission
per run (`ferry_api_submissions`, as `ferry api` records), 20 of them still in flight.
Then, through the real app (`create_app`, in-process ASGI, logged in with a session
cookie, so routing, auth, the SQL, and the Jinja2 render are all counted; no network),
each page `--repeat` times after one warm-up request: p50, p95 and max in ms.

`--db` keeps the filled file, and reuses it when it exists (skipping the fill).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.api import ApiServices, ApiSettings, ApiStore, create_app, create_key  # noqa: E402
from app.api.store import SubmissionRow  # noqa: E402
from app.contracts import RunResult, RunStatus, SpanEvent, SpanKind, Usage  # noqa: E402
from app.contracts.errors import ErrorCategory  # noqa: E402
from app.contracts.runs import RunError  # noqa: E402
from app.contracts.spans import SpanStatus  # noqa: E402
from app.observability.history import HistoryStore, RunFilter  # noqa: E402
from app.observability.history.schema import RunRow  # noqa: E402
from app.project.project import Project  # noqa: E402

TENANTS = (("acme", 0.6), ("globex", 0.3), ("initech", 0.1))
AGENTS = ("invoice-extractor", "invoice-validator", "invoice-storer", "support", "triage")
DEPLOYMENTS = ("d-1a2b3c", "d-4d5e6f", "d-7a8b9c")
#: (category, share of all runs): 6 % fail, tool_timeout rare.
FAILURES = (
    (ErrorCategory.RATE_LIMIT, 0.03),
    (ErrorCategory.TOOL_ERROR, 0.015),
    (ErrorCategory.OUTPUT_VALIDATION, 0.012),
    (ErrorCategory.TOOL_TIMEOUT, 0.003),
)
BATCH = 2000
IN_FLIGHT = 20


def fill(history: HistoryStore, runs: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    store = ApiStore(history.engine)
    results: list[RunResult] = []
    spans: list[SpanEvent] = []
    submissions: list[dict[str, Any]] = []
    started_fill = time.perf_counter()
    for n in range(runs):
        run_id = str(uuid.UUID(int=rng.getrandbits(128)))
        started = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
        tenant = rng.choices([t for t, _ in TENANTS], [w for _, w in TENANTS])[0]
        agent = rng.choice(AGENTS)
        roll, error = rng.random(), None
        for category, share in FAILURES:
            if roll < share:
                error = RunError(category=category, message=f"{category.value} (bench)", retryable=False)
                break
            roll -= share
        tokens_in, tokens_out = rng.randint(100, 3000), rng.randint(10, 600)
        cost = tokens_in * 3e-7 + tokens_out * 2.5e-6
        duration = rng.uniform(200, 8000)
        ended = started + timedelta(milliseconds=duration)
        results.append(
            RunResult(
                run_id=run_id,
                agent=agent,
                status=RunStatus.FAILED if error else RunStatus.COMPLETED,
                error=error,
                output=None if error else {"answer": "ok", "n": n},
                usage=Usage(
                    prompt_tokens=tokens_in,
                    completion_tokens=tokens_out,
                    total_tokens=tokens_in + tokens_out,
                    cost_usd=cost,
                    llm_calls=1,
                ),
                started_at=started,
                ended_at=ended,
                duration_ms=duration,
                tenant=tenant,
                deployment=rng.choice(DEPLOYMENTS),
            )
        )
        spans.append(
            SpanEvent(
                run_id=run_id,
                trace_id=uuid.uuid4().hex,
                span_id=uuid.uuid4().hex[:16],
                kind=SpanKind.LLM_CALL,
                name="llm",
                status=SpanStatus.ERROR if error else SpanStatus.OK,
                start=started,
                end=ended,
                duration_ms=duration,
                attributes={
                    "model": rng.choice(("openai/gpt-4o-mini", "gemini/gemini-2.5-flash")),
                    "llm.prompt_tokens": tokens_in,
                    "llm.completion_tokens": tokens_out,
                    "cost_usd": cost,
                },
            )
        )
        submissions.append(_submission(run_id, tenant, agent, started))
        if len(results) == BATCH:
            _flush(history, store, results, spans, submissions)
    for _ in range(IN_FLIGHT):
        submissions.append(_submission(str(uuid.uuid4()), "acme", "support", now - timedelta(seconds=5)))
    _flush(history, store, results, spans, submissions)
    print(f"filled {runs:,} runs in {time.perf_counter() - started_fill:.1f} s", flush=True)


def _submission(run_id: str, tenant: str, agent: str, at: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "tenant": tenant,
        "agent": agent,
        "idempotency_key": None,
        "body_sha256": "0" * 64,
        "created_at": at,
        "queued": True,
    }


def _flush(
    history: HistoryStore,
    store: ApiStore,
    results: list[RunResult],
    spans: list[SpanEvent],
    submissions: list[dict[str, Any]],
) -> None:
    history.write(results, spans)
    if submissions:
        with store.engine.begin() as connection:
            connection.execute(insert(SubmissionRow), submissions)
    results.clear()
    spans.clear()
    submissions.clear()


class _NoSink:
    async def submit(self, request: Any, key: str | None = None) -> None:
        raise RuntimeError("the bench submits nothing")

    async def cancel(self, run_id: str, *, tenant: str | None = None, source: str = "cli") -> None:
        raise RuntimeError("the bench cancels nothing")


def pages(client: TestClient, run_id: str, rare: str) -> dict[str, str]:
    """Name → URL of what a user opens; `rare` a deep page's cursor."""
    return {
        "runs (first page)": "/ui/runs",
        "runs (page 40)": f"/ui/runs?cursor={rare}",
        "runs (category rate_limit)": "/ui/runs?category=rate_limit",
        "runs (category tool_timeout: rare)": "/ui/runs?category=tool_timeout",
        "runs (agent + status failed)": "/ui/runs?agent=support&status=failed",
        "runs (deployment)": f"/ui/runs?deployment={DEPLOYMENTS[1]}",
        "runs (last 24h)": "/ui/runs?range=24h",
        "runs (from/to 3 days)": "/ui/runs?since={}&until={}".format(
            (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M"),
            (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"),
        ),
        "live.json (in flight)": "/ui/runs/live.json",
        "run detail": f"/ui/runs/{run_id}",
        "cost (7d, per agent)": "/ui/cost",
        "cost (30d, per model)": "/ui/cost?range=30d&by=model",
        "failures (7d)": "/ui/failures",
    }


def time_pages(client: TestClient, urls: dict[str, str], repeat: int) -> list[tuple[str, float, float, float]]:
    rows = []
    for name, url in urls.items():
        first = client.get(url)
        assert first.status_code == 200, (url, first.status_code, first.text[:300])
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
        rows.append((name, statistics.median(samples), p95, samples[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--db", type=Path, default=None, help="keep (or reuse) the filled SQLite file here")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="ferry-bench-ui-")) / "history.db"
    existed = db.exists()
    history = HistoryStore.open(f"sqlite:///{db}")
    if not existed:
        fill(history, args.runs)
    print(f"history: {history.counts()[0]:,} runs, {history.counts()[1]:,} spans in {db}")

    project_dir = Path(tempfile.mkdtemp(prefix="ferry-bench-ui-project-"))
    (project_dir / "agents").mkdir()
    for agent in AGENTS:
        (project_dir / "agents" / f"{agent}.yaml").write_text(
            f"version: '1.0'\nname: {agent}\ndescription: bench\nmodel: openai/gpt-4o-mini\nsystem_prompt: hi\n"
        )
    (project_dir / "ferry.yaml").write_text(
        "spend_limits:\n  - {scope: project, period: day, limit_usd: 500}\n"
        "  - {scope: agent, period: month, limit_usd: 2000}\n  - {scope: tenant, period: day, limit_usd: 100}\n"
    )
    from app.project import load_project

    project: Project = load_project(project_dir)

    @asynccontextmanager
    async def open_sink() -> AsyncIterator[_NoSink]:
        yield _NoSink()

    services = ApiServices(project=project, history=history, store=ApiStore(history.engine), open_sink=open_sink)
    app = create_app(ApiSettings(), services)
    with TestClient(app) as client:
        for who, key in (
            ("tenant acme (60 % of runs)", create_key(services.store, "acme")),
            ("admin (all tenants)", create_key(services.store, "root", admin=True)),
        ):
            client.cookies.clear()
            login = client.post("/ui/login", data={"key": key.token}, follow_redirects=False)
            assert login.status_code == 303, login.text
            tenant = None if key.admin else key.tenant
            runs = history.runs(RunFilter(tenant=tenant, limit=1))
            with Session(history.engine) as db:
                scoped = select(func.count()).select_from(RunRow)
                count = db.scalar(scoped if tenant is None else scoped.where(RunRow.tenant == tenant))
            cursor = _cursor_of_page(client, 40)
            assert cursor, "the 40th page has a cursor"
            print(f"\n{who}: {count:,} runs")
            print(f"{'page':46} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
            for name, p50, p95, worst in time_pages(client, pages(client, runs[0].run_id, cursor), args.repeat):
                print(f"{name:46} {p50:8.1f} {p95:8.1f} {worst:8.1f}")
    history.close()


def _cursor_of_page(client: TestClient, page: int) -> str:
    """The cursor of the page-th page, walked as a user would (following "Older runs")."""
    import re

    url = "/ui/runs"
    cursor = ""
    for _ in range(page - 1):
        found = re.search(r'href="/ui/runs\?cursor=([^"&]+)" rel="next"', client.get(url).text)
        if found is None:
            break
        cursor = found.group(1)
        url = f"/ui/runs?cursor={cursor}"
    return cursor


if __name__ == "__main__":
    main()
