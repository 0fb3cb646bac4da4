"""Runs and their steps written straight into the history, as the projector would write them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.contracts import RunResult, RunStatus, SpanEvent, SpanKind, Usage
from app.contracts.errors import ErrorCategory
from app.contracts.runs import RunError, Trigger
from app.contracts.spans import SpanStatus
from app.observability.history import HistoryStore

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def span(
    run_id: str,
    kind: SpanKind,
    name: str,
    start_ms: float,
    end_ms: float,
    *,
    parent: str | None = None,
    error: str | None = None,
    started: datetime = T0,
    **attrs: Any,
) -> SpanEvent:
    if error:
        attrs = {"error.category": error, "error.message": f"{error} (simulated)", **attrs}
    return SpanEvent(
        run_id=run_id,
        trace_id="t" * 32,
        span_id=uuid.uuid4().hex[:16],
        parent_span_id=parent,
        kind=kind,
        name=name,
        status=SpanStatus.ERROR if error else SpanStatus.OK,
        start=started + timedelta(milliseconds=start_ms),
        end=started + timedelta(milliseconds=end_ms),
        duration_ms=end_ms - start_ms,
        attributes=attrs,
    )


def failed_run(history: HistoryStore, tenant: str = "acme", *, started: datetime = T0) -> str:
    """A run whose one LLM step was rate limited three times: two waits, then it gave up."""
    run_id = str(uuid.uuid4())
    root = span(run_id, SpanKind.RUN, "echo", 0, 900, error="rate_limit", started=started)
    call = span(
        run_id,
        SpanKind.LLM_CALL,
        "llm",
        5,
        890,
        parent=root.span_id,
        error="rate_limit",
        started=started,
        model="openai/sim-model",
        **{"llm.attempts": 3, "llm.attempts_allowed": 3, "llm.give_up": "attempts_exhausted"},
    )
    steps = [
        span(
            run_id,
            SpanKind.LLM_ATTEMPT,
            "attempt",
            5,
            100,
            parent=call.span_id,
            error="rate_limit",
            started=started,
            model="openai/sim-model",
            attempt=1,
            **{"llm.prompt_tokens": 12, "llm.completion_tokens": 0, "cost_usd": 0.0012},
        ),
        span(
            run_id,
            SpanKind.RETRY_WAIT,
            "wait",
            100,
            400,
            parent=call.span_id,
            started=started,
            wait_seconds=0.3,
            after_attempt=1,
            reason="rate_limit",
        ),
        span(
            run_id,
            SpanKind.LLM_ATTEMPT,
            "attempt",
            400,
            480,
            parent=call.span_id,
            error="rate_limit",
            started=started,
            model="openai/sim-model",
            attempt=2,
        ),
        span(
            run_id,
            SpanKind.RETRY_WAIT,
            "wait",
            480,
            800,
            parent=call.span_id,
            started=started,
            wait_seconds=0.32,
            after_attempt=2,
            reason="rate_limit",
        ),
        span(
            run_id,
            SpanKind.LLM_ATTEMPT,
            "attempt",
            800,
            885,
            parent=call.span_id,
            error="rate_limit",
            started=started,
            model="openai/sim-model",
            attempt=3,
        ),
    ]
    result = RunResult(
        run_id=run_id,
        agent="echo",
        status=RunStatus.FAILED,
        tenant=tenant,
        error=RunError(
            category=ErrorCategory.RATE_LIMIT, message="Rate limit reached <script>alert(1)</script>", retryable=True
        ),
        usage=Usage(prompt_tokens=12, completion_tokens=0, total_tokens=12, cost_usd=0.0012, llm_calls=1),
        started_at=started,
        ended_at=started + timedelta(milliseconds=900),
        duration_ms=900,
        trigger=Trigger(source="api"),
    )
    history.write([result], [root, call, *steps])
    return run_id


def completed_run(
    history: HistoryStore,
    tenant: str = "acme",
    *,
    started: datetime = T0,
    output: Any = "hi",
    agent: str = "echo",
    cost: float = 0.002,
) -> str:
    run_id = str(uuid.uuid4())
    result = RunResult(
        run_id=run_id,
        agent=agent,
        status=RunStatus.COMPLETED,
        tenant=tenant,
        output=output,
        usage=Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15, cost_usd=cost, llm_calls=1),
        started_at=started,
        ended_at=started + timedelta(milliseconds=50),
        duration_ms=50,
    )
    history.write([result], [span(run_id, SpanKind.RUN, agent, 0, 50, started=started)])
    return run_id


def log_in(client: TestClient, token: str) -> None:
    response = client.post("/ui/login", data={"key": token, "next": "/ui/runs"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/ui/runs"


@pytest.fixture
def ui(make_client: Any) -> TestClient:
    client: TestClient = make_client()
    return client
