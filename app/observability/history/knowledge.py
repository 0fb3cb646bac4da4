"""Connic's knowledge entries on the run-history database (`app.compat.knowledge.KnowledgeBackend`).

One row per chunk, keyed by tenant, environment, namespace, entry and position; storing
an entry replaces its chunks in one transaction. Opened on first use, like the
document store. A chunk's embedding is kept in the same row, packed as float32
(`pack_vector`), with the name of the model that made it.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from app.compat.documents import DocumentScope
from app.compat.knowledge import Chunk
from app.observability.history.lazy_store import LazyHistoryStore
from app.observability.history.schema import KnowledgeRow


def pack_vector(vector: tuple[float, ...] | None) -> bytes | None:
    """float32, little-endian whatever the machine, so a database moves between hosts."""
    if vector is None:
        return None
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def unpack_vector(data: bytes | None) -> tuple[float, ...] | None:
    if data is None:
        return None
    unpacked = array("f")
    unpacked.frombytes(data)
    if sys.byteorder == "big":
        unpacked.byteswap()
    return tuple(unpacked)


class SqlKnowledgeBackend(LazyHistoryStore):
    async def replace_entry(self, scope: DocumentScope, namespace: str, entry_id: str, chunks: Sequence[Chunk]) -> None:
        now = datetime.now(UTC)

        def work(session: Session) -> None:
            session.execute(
                delete(KnowledgeRow).where(
                    KnowledgeRow.tenant == scope.tenant,
                    KnowledgeRow.environment == scope.environment,
                    KnowledgeRow.namespace == namespace,
                    KnowledgeRow.entry_id == entry_id,
                )
            )
            session.add_all(
                KnowledgeRow(
                    tenant=scope.tenant,
                    environment=scope.environment,
                    namespace=namespace,
                    entry_id=entry_id,
                    chunk_index=c.index,
                    content=c.content,
                    entry_metadata=c.metadata,
                    created_at=now,
                    embedding=pack_vector(c.vector),
                    embedding_model=c.vector_model if c.vector is not None else None,
                )
                for c in chunks
            )

        await self._run(work)

    async def chunks(self, scope: DocumentScope, namespace: str | None) -> list[Chunk]:
        def work(session: Session) -> list[Chunk]:
            query = select(KnowledgeRow).where(
                KnowledgeRow.tenant == scope.tenant, KnowledgeRow.environment == scope.environment
            )
            if namespace:
                query = query.where(
                    or_(KnowledgeRow.namespace == namespace, KnowledgeRow.namespace.startswith(namespace + "."))
                )
            rows = session.execute(
                query.order_by(KnowledgeRow.namespace, KnowledgeRow.entry_id, KnowledgeRow.chunk_index)
            )
            return [
                Chunk(
                    row.entry_id,
                    row.namespace,
                    int(row.chunk_index),
                    row.content,
                    dict(row.entry_metadata),
                    vector=unpack_vector(row.embedding),
                    vector_model=row.embedding_model,
                )
                for (row,) in rows
            ]

        return await self._run(work)

    async def delete(self, scope: DocumentScope, keys: Sequence[tuple[str, str]]) -> int:
        if not keys:
            return 0

        def work(session: Session) -> int:
            result = session.execute(
                delete(KnowledgeRow).where(
                    KnowledgeRow.tenant == scope.tenant,
                    KnowledgeRow.environment == scope.environment,
                    or_(*(and_(KnowledgeRow.namespace == ns, KnowledgeRow.entry_id == entry) for ns, entry in keys)),
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return await self._run(work)

    async def set_vectors(self, scope: DocumentScope, chunks: Sequence[Chunk]) -> None:
        def work(session: Session) -> None:
            for c in chunks:
                session.execute(
                    update(KnowledgeRow)
                    .where(
                        KnowledgeRow.tenant == scope.tenant,
                        KnowledgeRow.environment == scope.environment,
                        KnowledgeRow.namespace == c.namespace,
                        KnowledgeRow.entry_id == c.entry_id,
                        KnowledgeRow.chunk_index == c.index,
                    )
                    .values(embedding=pack_vector(c.vector), embedding_model=c.vector_model)
                )

        if chunks:
            await self._run(work)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
