"""The document store of Connic's `db_*` tools, on the run-history database.

Implements `app.compat.documents.DocumentBackend`: one table (`ferry_documents`, JSON on
SQLite and JSONB on PostgreSQL) keyed by tenant, environment, collection and document
id. SQLAlchemy is synchronous, so each call runs in a thread; each is one transaction.
The store is opened on the first `db_*` call, not at engine start: a project without
document tools never touches the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.compat.documents import DocumentScope, StoredDocument
from app.compat.filters import filter_error
from app.contracts.errors import ToolError
from app.observability.history.lazy_store import LazyHistoryStore
from app.observability.history.schema import DocumentRow

T = TypeVar("T")


def _size(data: dict[str, object]) -> int:
    return len(json.dumps(data, separators=(",", ":")).encode())


class SqlDocumentBackend(LazyHistoryStore):
    async def _run(self, work: Callable[[Session], T]) -> T:
        try:
            return await super()._run(work)
        except IntegrityError:
            raise filter_error("a document with that _id is already in the collection") from None
        except SQLAlchemyError as exc:
            raise ToolError(f"the document store failed: {type(exc).__name__}", "db") from exc

    @staticmethod
    def _where(scope: DocumentScope, collection: str) -> tuple[ColumnElement[bool], ...]:
        return (
            DocumentRow.tenant == scope.tenant,
            DocumentRow.environment == scope.environment,
            DocumentRow.collection == collection,
        )

    async def load(self, scope: DocumentScope, collection: str) -> list[StoredDocument]:
        def work(session: Session) -> list[StoredDocument]:
            rows = session.execute(
                select(DocumentRow.doc_id, DocumentRow.data)
                .where(*self._where(scope, collection))
                .order_by(DocumentRow.created_at, DocumentRow.doc_id)
            )
            return [StoredDocument(doc_id, dict(data)) for doc_id, data in rows]

        return await self._run(work)

    async def insert(self, scope: DocumentScope, collection: str, documents: Sequence[StoredDocument]) -> None:
        now = datetime.now(UTC)

        def work(session: Session) -> None:
            session.add_all(
                DocumentRow(
                    tenant=scope.tenant,
                    environment=scope.environment,
                    collection=collection,
                    doc_id=doc.id,
                    data=doc.data,
                    size_bytes=_size(doc.data),
                    created_at=now + timedelta(microseconds=position),  # keeps a batch in its order
                    updated_at=now,
                )
                for position, doc in enumerate(documents)
            )

        await self._run(work)

    async def replace(self, scope: DocumentScope, collection: str, documents: Sequence[StoredDocument]) -> None:
        now = datetime.now(UTC)

        def work(session: Session) -> None:
            for doc in documents:
                session.execute(
                    update(DocumentRow)
                    .where(*self._where(scope, collection), DocumentRow.doc_id == doc.id)
                    .values(data=doc.data, size_bytes=_size(doc.data), updated_at=now)
                )

        await self._run(work)

    async def delete(self, scope: DocumentScope, collection: str, ids: Sequence[str]) -> int:
        if not ids:
            return 0

        def work(session: Session) -> int:
            result = session.execute(
                delete(DocumentRow).where(*self._where(scope, collection), DocumentRow.doc_id.in_(list(ids)))
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return await self._run(work)

    async def collections(self, scope: DocumentScope) -> list[tuple[str, int, int]]:
        def work(session: Session) -> list[tuple[str, int, int]]:
            rows = session.execute(
                select(DocumentRow.collection, func.count(), func.coalesce(func.sum(DocumentRow.size_bytes), 0))
                .where(DocumentRow.tenant == scope.tenant, DocumentRow.environment == scope.environment)
                .group_by(DocumentRow.collection)
                .order_by(DocumentRow.collection)
            )
            return [(name, int(count), int(size)) for name, count, size in rows]

        return await self._run(work)
