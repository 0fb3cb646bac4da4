"""The dashboard's questions to the history: one page of runs, the runs in flight, time series.

Every query takes the tenant it is scoped to (None for an admin key) and applies it in
SQL, so a tenant's page never loads another tenant's rows. Pages of runs are keyset
pages on (started_at, run_id) like `GET /v1/runs`, so the 2,000th page costs what the
first does; the bench (`bench/bench_dashboard.py`) times them on 100,000 runs.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from app.api.store import SubmissionRow
from app.contracts import SpanKind
from app.observability.history.projection import PIPELINE
from app.observability.history.records import RunRecord
from app.observability.history.schema import RunRow, SpanRow

#: How far back the in-flight list looks for accepted runs without a result.
IN_FLIGHT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class RunsQuery:
    tenant: str | None  # None: every tenant (an admin key)
    agent: str | None = None
    status: str | None = None
    category: str | None = None
    deployment: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True)
class InFlight:
    """A run the API accepted whose result is not recorded yet."""

    run_id: str
    agent: str
    tenant: str
    accepted_at: datetime
    running: bool  # a step of it is recorded already (else: still queued)


@dataclass(frozen=True)
class Point:
    """One group's total in one time bucket."""

    bucket: str
    key: str
    runs: int
    tokens: int
    cost_usd: float


def encode_cursor(run: RunRecord) -> str:
    raw = json.dumps([run.started_at.isoformat(), run.run_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    """None for a cursor this dashboard did not give out (the page then starts at the top)."""
    try:
        started, run_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(started), str(run_id)
    except (binascii.Error, ValueError, TypeError):
        return None


def runs_page(session: Session, query: RunsQuery) -> tuple[list[RunRecord], str | None]:
    """One page, newest first, and the cursor of the next (None on the last page)."""
    statement = select(RunRow)
    for column, value in (
        (RunRow.tenant, query.tenant),
        (RunRow.agent, query.agent),
        (RunRow.status, query.status),
        (RunRow.error_category, query.category),
        (RunRow.deployment, query.deployment),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if query.since is not None:
        statement = statement.where(RunRow.started_at >= query.since)
    if query.until is not None:
        statement = statement.where(RunRow.started_at < query.until)
    after = decode_cursor(query.cursor) if query.cursor else None
    if after is not None:
        started, run_id = after
        statement = statement.where(
            or_(RunRow.started_at < started, and_(RunRow.started_at == started, RunRow.run_id > run_id))
        )
    statement = statement.order_by(RunRow.started_at.desc(), RunRow.run_id).limit(query.limit + 1)
    rows = [RunRecord.model_validate(row) for row in session.scalars(statement)]
    page = rows[: query.limit]
    return page, encode_cursor(page[-1]) if len(rows) > query.limit else None


def in_flight(session: Session, tenant: str | None, now: datetime, limit: int = 50) -> list[InFlight]:
    """Runs accepted through the API in the last day with no result yet, newest first."""
    statement = (
        select(SubmissionRow)
        .outerjoin(RunRow, RunRow.run_id == SubmissionRow.run_id)
        .where(RunRow.run_id.is_(None), SubmissionRow.queued.is_(True))
        .where(SubmissionRow.created_at >= now - IN_FLIGHT_WINDOW)
        .order_by(SubmissionRow.created_at.desc())
        .limit(limit)
    )
    if tenant is not None:
        statement = statement.where(SubmissionRow.tenant == tenant)
    rows = list(session.scalars(statement))
    ids = [row.run_id for row in rows]
    started = set(session.scalars(select(SpanRow.run_id).where(SpanRow.run_id.in_(ids)).distinct())) if ids else set()
    return [InFlight(r.run_id, r.agent, r.tenant, r.created_at, r.run_id in started) for r in rows]


def choices(session: Session, tenant: str | None, since: datetime) -> dict[str, list[str]]:
    """The values the filters offer: agents, categories, deployments and tenants seen lately."""
    found: dict[str, list[str]] = {}
    for name, column in (
        ("agent", RunRow.agent),
        ("category", RunRow.error_category),
        ("deployment", RunRow.deployment),
        ("tenant", RunRow.tenant),
    ):
        statement = select(column).where(RunRow.started_at >= since, column.is_not(None)).distinct().limit(200)
        if tenant is not None:
            statement = statement.where(RunRow.tenant == tenant)
        found[name] = sorted(str(v) for v in session.scalars(statement))
    return found


def bucket_of(column: Any, hourly: bool, dialect: str) -> ColumnElement[Any]:
    """A UTC day `2026-05-04` or hour `2026-05-04 09` of a timestamp column."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24" if hourly else "YYYY-MM-DD")
    return func.substr(column, 1, 13 if hourly else 10)  # SQLite keeps UTC text


def usage_series(session: Session, by: str, tenant: str | None, since: datetime, hourly: bool) -> list[Point]:
    """Runs (LLM calls by model), tokens and cost per bucket per agent, model or tenant.
    A pipeline's own result is left out (its stages are counted), as `ferry usage` does."""
    dialect = session.get_bind().dialect.name
    statement: Select[Any]
    if by == "model":
        bucket = bucket_of(SpanRow.start_time, hourly, dialect)
        key: ColumnElement[Any] = func.coalesce(SpanRow.model, "(unknown)")
        statement = select(
            bucket.label("bucket"),
            key.label("key"),
            func.count().label("n"),
            func.coalesce(func.sum(SpanRow.prompt_tokens), 0) + func.coalesce(func.sum(SpanRow.completion_tokens), 0),
            func.coalesce(func.sum(SpanRow.cost_usd), 0.0),
        ).where(SpanRow.kind == SpanKind.LLM_CALL.value, SpanRow.start_time >= since)
        if tenant is not None:
            statement = statement.join(RunRow, RunRow.run_id == SpanRow.run_id).where(RunRow.tenant == tenant)
    else:
        bucket = bucket_of(RunRow.started_at, hourly, dialect)
        key = RunRow.tenant.expression if by == "tenant" else RunRow.agent.expression
        statement = select(
            bucket.label("bucket"),
            key.label("key"),
            func.count().label("n"),
            func.coalesce(func.sum(RunRow.total_tokens), 0),
            func.coalesce(func.sum(RunRow.cost_usd), 0.0),
        ).where(RunRow.kind != PIPELINE, RunRow.started_at >= since)
        if tenant is not None:
            statement = statement.where(RunRow.tenant == tenant)
    statement = statement.group_by(bucket, key).order_by(bucket, key)
    return [Point(str(b), str(k), int(n), int(t), float(c)) for b, k, n, t, c in session.execute(statement)]


def failure_series(session: Session, tenant: str | None, since: datetime, hourly: bool) -> list[Point]:
    """Failed runs per bucket per error category (`key`); tokens and cost they spent."""
    bucket = bucket_of(RunRow.started_at, hourly, session.get_bind().dialect.name)
    statement = select(
        bucket,
        RunRow.error_category,
        func.count(),
        func.coalesce(func.sum(RunRow.total_tokens), 0),
        func.coalesce(func.sum(RunRow.cost_usd), 0.0),
    ).where(RunRow.error_category.is_not(None), RunRow.kind != PIPELINE, RunRow.started_at >= since)
    if tenant is not None:
        statement = statement.where(RunRow.tenant == tenant)
    statement = statement.group_by(bucket, RunRow.error_category).order_by(bucket, RunRow.error_category)
    return [Point(str(b), str(k), int(n), int(t), float(c)) for b, k, n, t, c in session.execute(statement)]


def spent_by(session: Session, scope: str, since: datetime, tenant: str | None) -> dict[str, float]:
    """Cost since `since` per subject of a spend scope ('' for the project), as the
    workers' ledger counts it: the run's start time, pipeline results left out, a stage
    counted for its agent and for its pipeline."""
    base = (RunRow.kind != PIPELINE, RunRow.started_at >= since, RunRow.cost_usd.is_not(None))
    scoped = (*base, RunRow.tenant == tenant) if tenant is not None else base
    cost = func.sum(RunRow.cost_usd)
    if scope == "project":
        return {"": float(session.scalar(select(func.coalesce(cost, 0.0)).where(*scoped)) or 0.0)}
    if scope == "tenant":
        rows = session.execute(select(RunRow.tenant, cost).where(*scoped).group_by(RunRow.tenant))
        return {str(name): float(total or 0.0) for name, total in rows}
    totals: dict[str, float] = {}
    for column, extra in (
        (RunRow.agent, RunRow.agent.is_not(None)),
        (RunRow.pipeline, RunRow.pipeline != RunRow.agent),
    ):
        rows = session.execute(select(column, cost).where(*scoped, column.is_not(None), extra).group_by(column))
        for name, total in rows:
            totals[str(name)] = totals.get(str(name), 0.0) + float(total or 0.0)
    return totals
