"""Connic sessions on the run-history database (`app.compat.sessions.SessionStore`).

One row per (tenant, environment, agent, session key); its turns are a JSON list,
rewritten whole on every append in one transaction. Opened on first use, as the
document store is: an agent without `session:` never touches the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.compat.documents import DocumentScope
from app.compat.sessions import MAX_TURNS
from app.observability.history.lazy_store import LazyHistoryStore
from app.observability.history.schema import SessionRow


class SqlSessionStore(LazyHistoryStore):
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
