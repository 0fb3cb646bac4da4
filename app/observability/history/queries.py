"""The questions the CLI (and later the API) asks of the history, as SQL on either backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from app.contracts import SpanKind
from app.contracts.errors import BadInputError
from app.observability.history.projection import PIPELINE
from app.observability.history.records import RunRecord, SpanRecord, UsageLine
from app.observability.history.schema import RunRow, SpanRow

#: A run id prefix shorter than this is not looked up (it would match half the table).
MIN_PREFIX = 4


@dataclass(frozen=True)
class RunFilter:
    agent: str | None = None
    status: str | None = None
    tenant: str | None = None
    category: str | None = None
    since: datetime | None = None
    limit: int = 50
    deployment: str | None = None


class UsageBy(StrEnum):
    AGENT = "agent"
    MODEL = "model"
    TENANT = "tenant"
    DAY = "day"
    DEPLOYMENT = "deployment"


class AmbiguousRunId(BadInputError):
    """A run id prefix that matches several runs: the user must give more of it."""

    def __init__(self, prefix: str, matches: Sequence[str]) -> None:
        shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
        super().__init__(f"run id prefix {prefix!r} matches several runs ({shown}): give more of it")
        self.prefix = prefix
        self.matches = list(matches)


def list_runs(session: Session, where: RunFilter) -> list[RunRecord]:
    """Newest first."""
    query = select(RunRow)
    for column, value in (
        (RunRow.agent, where.agent),
        (RunRow.status, where.status),
        (RunRow.tenant, where.tenant),
        (RunRow.error_category, where.category),
        (RunRow.deployment, where.deployment),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(RunRow.started_at >= where.since)
    query = query.order_by(RunRow.started_at.desc(), RunRow.run_id).limit(where.limit)
    return [RunRecord.model_validate(row) for row in session.scalars(query)]


def find_run(session: Session, run_id: str) -> RunRecord | None:
    """The run with this id, else the only one whose id starts with it (as git takes
    a short commit id); `AmbiguousRunId` when several do."""
    row = session.get(RunRow, run_id)
    if row is not None:
        return RunRecord.model_validate(row)
    if len(run_id) < MIN_PREFIX:
        return None
    pattern = _prefix_pattern(run_id)
    matches = list(session.scalars(select(RunRow).where(RunRow.run_id.like(pattern, escape="\\")).limit(11)))
    if len(matches) > 1:
        raise AmbiguousRunId(run_id, [m.run_id for m in matches])
    return RunRecord.model_validate(matches[0]) if matches else None


def span_run_ids(session: Session, run_id: str) -> list[str]:
    """Run ids that have spans and equal `run_id` or start with it: runs still running,
    or whose result is not recorded, can still be traced."""
    exact = select(SpanRow.run_id).where(SpanRow.run_id == run_id).limit(1)
    found = list(session.scalars(exact))
    if found or len(run_id) < MIN_PREFIX:
        return found
    pattern = _prefix_pattern(run_id)
    query = select(SpanRow.run_id).where(SpanRow.run_id.like(pattern, escape="\\")).distinct().limit(11)
    return list(session.scalars(query))


def runs_of_root(session: Session, root_run_id: str) -> list[RunRecord]:
    """Every run recorded under one root (a pipeline's stages), in stage order."""
    query = (
        select(RunRow)
        .where(RunRow.root_run_id == root_run_id, RunRow.run_id != root_run_id)
        .order_by(RunRow.stage, RunRow.started_at, RunRow.run_id)
    )
    return [RunRecord.model_validate(row) for row in session.scalars(query)]


def spans_of(session: Session, run_ids: Sequence[str]) -> list[SpanRecord]:
    if not run_ids:
        return []
    query = select(SpanRow).where(SpanRow.run_id.in_(run_ids)).order_by(SpanRow.start_time, SpanRow.span_id)
    return [SpanRecord.model_validate(row) for row in session.scalars(query)]


def usage(session: Session, by: UsageBy, since: datetime | None = None) -> list[UsageLine]:
    """Tokens and cost per group, largest cost first. Runs are summed without pipeline
    rows (a pipeline's own usage is the sum of its stages'); by model, LLM calls are."""
    query: Select[Any]
    if by is UsageBy.MODEL:
        key: ColumnElement[Any] = func.coalesce(SpanRow.model, "(unknown)")
        query = select(
            key.label("key"),
            func.count().label("n"),
            func.coalesce(func.sum(SpanRow.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(SpanRow.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(SpanRow.cost_usd), 0.0).label("cost_usd"),
            func.count().filter(SpanRow.cost_usd.is_(None)).label("unpriced"),
        ).where(SpanRow.kind == SpanKind.LLM_CALL.value)
        if since is not None:
            query = query.where(SpanRow.start_time >= since)
    else:
        key = _run_key(by, session.get_bind().dialect.name)
        query = select(
            key.label("key"),
            func.count().label("n"),
            func.coalesce(func.sum(RunRow.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(RunRow.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(RunRow.cost_usd), 0.0).label("cost_usd"),
            func.count().filter(RunRow.cost_usd.is_(None)).label("unpriced"),
        ).where(RunRow.kind != PIPELINE)
        if since is not None:
            query = query.where(RunRow.started_at >= since)
    query = query.group_by(key)
    lines = [
        UsageLine(
            key=str(row.key),
            count=int(row.n),
            prompt_tokens=int(row.prompt_tokens),
            completion_tokens=int(row.completion_tokens),
            cost_usd=float(row.cost_usd),
            unpriced=int(row.unpriced),
        )
        for row in session.execute(query)
    ]
    if by is UsageBy.DAY:
        return sorted(lines, key=lambda line: line.key)
    return sorted(lines, key=lambda line: (-line.cost_usd, -line.prompt_tokens - line.completion_tokens, line.key))


def _run_key(by: UsageBy, dialect: str) -> ColumnElement[Any]:
    if by is UsageBy.AGENT:
        return RunRow.agent.expression
    if by is UsageBy.TENANT:
        return RunRow.tenant.expression
    if by is UsageBy.DEPLOYMENT:
        return func.coalesce(RunRow.deployment, "(none)")
    if dialect == "postgresql":  # a timestamptz's date is the session's zone's: ask for UTC's
        return func.to_char(func.timezone("UTC", RunRow.started_at), "YYYY-MM-DD")
    return func.substr(RunRow.started_at, 1, 10)  # SQLite keeps UTC text, 'YYYY-MM-DD HH:MM:SS…'


def _prefix_pattern(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
