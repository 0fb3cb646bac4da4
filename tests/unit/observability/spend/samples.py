"""Results and limits for the spend tests: runs that cost a given amount at a given time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from app.contracts import PipelineContext, RunResult, RunStatus, Usage
from app.project.config import SpendLimit

_ids = itertools.count()


def at(text: str) -> datetime:
    """`2026-05-04 10:00` as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def result(
    cost: float | None,
    started: datetime,
    *,
    agent: str = "a",
    tenant: str = "default",
    run_id: str | None = None,
    pipeline: PipelineContext | None = None,
) -> RunResult:
    return RunResult(
        run_id=run_id or f"run-{next(_ids)}",
        agent=agent,
        status=RunStatus.COMPLETED,
        usage=Usage(prompt_tokens=10, completion_tokens=2, total_tokens=12, cost_usd=cost, llm_calls=1),
        started_at=started,
        ended_at=started + timedelta(seconds=1),
        duration_ms=1000.0,
        tenant=tenant,
        pipeline=pipeline,
    )


def limit(scope: str, period: str, usd: float, name: str | None = None) -> SpendLimit:
    return SpendLimit.model_validate({"scope": scope, "period": period, "limit_usd": usd, "name": name})


class Clock:
    """A settable now(): the tests move it across day and month boundaries."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
