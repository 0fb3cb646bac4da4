"""`LazyHistoryStore`: a store of the Connic runtime (documents, sessions, knowledge) on the
run-history database, opened on first use and called from threads.

SQLAlchemy is synchronous, so each call runs one transaction on a worker thread; the
database is opened (and migrated) by the first call, not at engine start, so a project
whose agents never use the store never touches the database.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Self, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

T = TypeVar("T")


class LazyHistoryStore:
    def __init__(self, opener: Callable[[], Engine]) -> None:
        """`opener`: builds (and migrates) the database engine, called once, on first use."""
        self._opener = opener
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_history(cls, url: str | None = None) -> Self:
        """On the run-history database (`url`, else `$FERRY_DATABASE_URL`, else the home's SQLite)."""

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
        """`work` in one transaction, on a thread."""

        def in_thread() -> T:
            with Session(self._engine_now()) as session, session.begin():
                return work(session)

        return await asyncio.to_thread(in_thread)

    def close(self) -> None:
        """Dispose of the database engine, if opened; a later call opens it again."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
