"""`GET /v1/runs`: a tenant's runs from the history, newest first, in keyset-paginated pages.

The cursor is the (started_at, run_id) of the last run of a page, opaque to clients
(url-safe base64 of JSON): the next page starts strictly after it, so runs recorded
meanwhile never shift a page and a client walks the list without gaps or repeats.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.api.problems import INVALID_INPUT, ApiProblem
from app.observability.history import HistoryStore, RunRecord
from app.observability.history.schema import RunRow


@dataclass(frozen=True)
class PageQuery:
    tenant: str | None  # None: every tenant (an admin key)
    agent: str | None = None
    status: str | None = None
    since: datetime | None = None
    limit: int = 50
    cursor: str | None = None


def encode_cursor(run: RunRecord) -> str:
    raw = json.dumps([run.started_at.isoformat(), run.run_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started, run_id = json.loads(raw)
        return datetime.fromisoformat(started), str(run_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ApiProblem(INVALID_INPUT, "cursor: not one this API gave out") from exc


def run_page(store: HistoryStore, query: PageQuery) -> tuple[list[RunRecord], str | None]:
    """One page and the cursor of the next (None on the last page)."""
    statement = select(RunRow)
    for column, value in ((RunRow.tenant, query.tenant), (RunRow.agent, query.agent), (RunRow.status, query.status)):
        if value is not None:
            statement = statement.where(column == value)
    if query.since is not None:
        statement = statement.where(RunRow.started_at >= query.since)
    if query.cursor is not None:
        started, run_id = decode_cursor(query.cursor)
        statement = statement.where(
            or_(RunRow.started_at < started, and_(RunRow.started_at == started, RunRow.run_id > run_id))
        )
    statement = statement.order_by(RunRow.started_at.desc(), RunRow.run_id).limit(query.limit + 1)
    with Session(store.engine) as session:
        rows = [RunRecord.model_validate(row) for row in session.scalars(statement)]
    page = rows[: query.limit]
    return page, encode_cursor(page[-1]) if len(rows) > query.limit else None
