"""Connic sessions on the run-history database (`app.compat.sessions.SessionStore`).

One row per (tenant, environment, agent, session key); its turns are a JSON list,
rewritten whole on every append in one transaction. Opened on first use, as the
document store is: an agent without `session:` never touches the database.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.compat.documents import DocumentScope
from app.compat.sessions import MAX_TURNS
from app.observability.history.schema import SessionRow

T = TypeVar("T")


class SqlSessionStore:
    def __init__(self, opener: Callable[[], Engine]) -> None:
        self._opener = opener
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_history(cls, url: str | None = None) -> SqlSessionStore:
        def open_store() -> Engine:
            from app.observability.history.store import HistoryStore

            return HistoryStore.open(url).engine

        return cls(open_store)

    def _engine_now(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._opener()
            return self._engine

    async def _run(self, work: Callable[[Session], T]) -> T:
        def in_thread() -> T:
            with Session(self._engine_now()) as session, session.begin():
                return work(session)

        return await asyncio.to_thread(in_thread)

    @staticmethod
    def _key(scope: DocumentScope, agent: str, key: str) -> tuple[str, str, str, str]:
        return (scope.tenant, scope.environment, agent, key)

    async def load(self, scope: DocumentScope, agent: str, key: str, ttl: timedelta | None) -> list[dict[str, str]]:
        def work(session: Session) -> list[dict[str, str]]:
            row = session.get(SessionRow, self._key(scope, agent, key))
            if row is None or (ttl is not None and row.updated_at < datetime.now(UTC) - ttl):
                return []
            return [dict(turn) for turn in row.turns]

        return await self._run(work)

    async def append(
        self, scope: DocumentScope, agent: str, key: str, turns: list[dict[str, str]], ttl: timedelta | None
    ) -> None:
        now = datetime.now(UTC)

        def work(session: Session) -> None:
            row = session.execute(
                select(SessionRow)
                .where(
                    SessionRow.tenant == scope.tenant,
                    SessionRow.environment == scope.environment,
                    SessionRow.agent == agent,
                    SessionRow.session_key == key,
                )
                .with_for_update()
            ).scalar_one_or_none()
            if row is None:
                session.add(
                    SessionRow(
                        tenant=scope.tenant,
                        environment=scope.environment,
                        agent=agent,
                        session_key=key,
                        turns=turns[-MAX_TURNS:],
                        updated_at=now,
                    )
                )
                return
            expired = ttl is not None and row.updated_at < now - ttl
            row.turns = [*([] if expired else row.turns), *turns][-MAX_TURNS:]
            row.updated_at = now

        await self._run(work)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
