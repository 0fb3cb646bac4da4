"""Connic's knowledge entries on the run-history database (`app.compat.knowledge.KnowledgeBackend`).

One row per chunk, keyed by tenant, environment, namespace, entry and position; storing
an entry replaces its chunks in one transaction. Opened on first use, like the
document store. A chunk's embedding is kept in the same row with the name of the model
that made it: in the pgvector column on PostgreSQL with pgvector (vector_column.py),
where `nearest` ranks in SQL; elsewhere packed as float32 in the `embedding` blob
(`pack_vector`), and `nearest` answers None so the caller ranks in Python. Blobs written
before the column existed move into it the first time a query meets them.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import (
    Float,
    LargeBinary,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, defer
from sqlalchemy.sql.elements import ColumnElement

from app.compat.documents import DocumentScope
from app.compat.passages import Chunk
from app.observability.history.lazy_store import LazyHistoryStore
from app.observability.history.schema import KNOWLEDGE_TABLE, KnowledgeRow
from app.observability.history.vector_column import (
    VECTOR_COLUMN,
    PgVector,
    decode_sent,
    float32s,
    prepare_vector_column,
)

_VECTOR = literal_column(f"{KNOWLEDGE_TABLE}.{VECTOR_COLUMN}", PgVector())
_SET_VECTOR = text(
    f"UPDATE {KNOWLEDGE_TABLE} SET {VECTOR_COLUMN} = CAST(:vector AS vector), embedding = NULL, "
    "embedding_model = :model WHERE tenant = :tenant AND environment = :environment "
    "AND namespace = :namespace AND entry_id = :entry_id AND chunk_index = :chunk_index"
).bindparams(bindparam("vector", type_=PgVector()))


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
    return float32s(data, "little")


def _in_scope(scope: DocumentScope, namespace: str | None) -> list[ColumnElement[bool]]:
    """The rows of `scope` in `namespace` and its sub-namespaces (None: all of them)."""
    where = [KnowledgeRow.tenant == scope.tenant, KnowledgeRow.environment == scope.environment]
    if namespace:
        below = KnowledgeRow.namespace.startswith(namespace + ".", autoescape=True)
        where.append(or_(KnowledgeRow.namespace == namespace, below))
    return where


class SqlKnowledgeBackend(LazyHistoryStore):
    def __init__(self, opener: Callable[[], Engine]) -> None:
        super().__init__(opener)
        self._vector_column: bool | None = None  # known on first use: vectors in pgvector?

    def _uses_vector_column(self) -> bool:
        """Found once per store, on the worker thread (it may create the extension and column)."""
        engine = self._engine_now()
        with self._lock:
            if self._vector_column is None:
                self._vector_column = prepare_vector_column(engine)
            return self._vector_column

    async def replace_entry(self, scope: DocumentScope, namespace: str, entry_id: str, chunks: Sequence[Chunk]) -> None:
        now = datetime.now(UTC)

        def work(session: Session) -> None:
            in_column = self._uses_vector_column()
            session.execute(delete(KnowledgeRow).where(*_in_scope(scope, None), *_entry(namespace, entry_id)))
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
                    embedding=None if in_column else pack_vector(c.vector),
                    embedding_model=c.vector_model if c.vector is not None else None,
                )
                for c in chunks
            )
            if in_column:
                session.flush()
                _write_vector_column(session, scope, [c for c in chunks if c.vector is not None])

        await self._run(work)

    async def chunks(self, scope: DocumentScope, namespace: str | None, *, vectors: bool = True) -> list[Chunk]:
        def work(session: Session) -> list[Chunk]:
            # Columns, not ORM objects: a query reads every chunk of its namespaces, thousands of rows.
            sent = vectors and self._uses_vector_column()  # pgvector's binary form, else blobs only
            vector = func.vector_send(_VECTOR, type_=LargeBinary) if sent else literal_column("NULL", LargeBinary)
            rows = session.execute(
                select(
                    KnowledgeRow.entry_id,
                    KnowledgeRow.namespace,
                    KnowledgeRow.chunk_index,
                    KnowledgeRow.content,
                    KnowledgeRow.entry_metadata,
                    KnowledgeRow.embedding_model,
                    vector.label("vector"),
                    (KnowledgeRow.embedding if vectors else literal_column("NULL", LargeBinary)).label("blob"),
                )
                .where(*_in_scope(scope, namespace))
                .order_by(KnowledgeRow.namespace, KnowledgeRow.entry_id, KnowledgeRow.chunk_index)
            )
            return [
                Chunk(
                    row.entry_id,
                    row.namespace,
                    int(row.chunk_index),
                    row.content,
                    dict(row.entry_metadata),
                    vector=decode_sent(row.vector) if row.vector is not None else unpack_vector(row.blob),
                    vector_model=row.embedding_model,
                )
                for row in rows
            ]

        return await self._run(work)

    async def unembedded(self, scope: DocumentScope, namespace: str | None, model: str) -> list[Chunk]:
        def work(session: Session) -> list[Chunk]:
            rows = session.scalars(
                select(KnowledgeRow)
                .options(defer(KnowledgeRow.embedding))
                .where(
                    *_in_scope(scope, namespace),
                    or_(KnowledgeRow.embedding_model.is_(None), KnowledgeRow.embedding_model != model),
                )
            )
            return [
                Chunk(row.entry_id, row.namespace, int(row.chunk_index), row.content, dict(row.entry_metadata))
                for row in rows
            ]

        return await self._run(work)

    async def nearest(
        self, scope: DocumentScope, namespace: str | None, vector: Sequence[float], model: str, limit: int
    ) -> list[tuple[Chunk, float]] | None:
        """The `limit` chunks of `model` nearest to `vector` in SQL (pgvector), nearest first, with
        their cosine similarity (chunks without their vectors); None when vectors are not in pgvector."""
        if not vector:
            return None

        def work(session: Session) -> list[tuple[Chunk, float]] | None:
            if not self._uses_vector_column():
                return None
            _move_blobs_to_column(session, scope, namespace)
            distance = _VECTOR.op("<=>", return_type=Float())(cast(bindparam("query", vector, PgVector()), PgVector()))
            rows = session.execute(
                select(
                    KnowledgeRow.namespace,
                    KnowledgeRow.entry_id,
                    KnowledgeRow.chunk_index,
                    KnowledgeRow.content,
                    KnowledgeRow.entry_metadata,
                    distance.label("distance"),
                )
                .where(
                    *_in_scope(scope, namespace),
                    KnowledgeRow.embedding_model == model,
                    func.vector_dims(_VECTOR) == len(vector),  # another size: the model's options changed
                )
                .order_by(text("distance"), KnowledgeRow.entry_id, KnowledgeRow.chunk_index)
                .limit(max(0, limit))
            )
            return [
                (
                    Chunk(row.entry_id, row.namespace, int(row.chunk_index), row.content, dict(row.entry_metadata)),
                    1.0 - row.distance if math.isfinite(row.distance) else 0.0,  # NaN: a zero vector
                )
                for row in rows
            ]

        return await self._run(work)

    async def delete(self, scope: DocumentScope, keys: Sequence[tuple[str, str]]) -> int:
        if not keys:
            return 0

        def work(session: Session) -> int:
            result = session.execute(
                delete(KnowledgeRow).where(
                    *_in_scope(scope, None), or_(*(and_(*_entry(ns, entry)) for ns, entry in keys))
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return await self._run(work)

    async def set_vectors(self, scope: DocumentScope, chunks: Sequence[Chunk]) -> None:
        def work(session: Session) -> None:
            if self._uses_vector_column():
                _write_vector_column(session, scope, chunks)
                return
            for c in chunks:
                session.execute(
                    update(KnowledgeRow)
                    .where(
                        *_in_scope(scope, None), *_entry(c.namespace, c.entry_id), KnowledgeRow.chunk_index == c.index
                    )
                    .values(embedding=pack_vector(c.vector), embedding_model=c.vector_model)
                )

        if chunks:
            await self._run(work)


def _entry(namespace: str, entry_id: str) -> list[ColumnElement[bool]]:
    return [KnowledgeRow.namespace == namespace, KnowledgeRow.entry_id == entry_id]


def _write_vector_column(session: Session, scope: DocumentScope, chunks: Sequence[Chunk]) -> None:
    if chunks:
        session.execute(
            _SET_VECTOR,
            [
                {
                    "vector": c.vector,
                    "model": c.vector_model if c.vector is not None else None,
                    "tenant": scope.tenant,
                    "environment": scope.environment,
                    "namespace": c.namespace,
                    "entry_id": c.entry_id,
                    "chunk_index": c.index,
                }
                for c in chunks
            ],
        )


def _move_blobs_to_column(session: Session, scope: DocumentScope, namespace: str | None) -> None:
    """Vectors stored as blobs before the database had pgvector, into the column."""
    rows = session.execute(
        select(
            KnowledgeRow.namespace,
            KnowledgeRow.entry_id,
            KnowledgeRow.chunk_index,
            KnowledgeRow.embedding,
            KnowledgeRow.embedding_model,
        ).where(*_in_scope(scope, namespace), KnowledgeRow.embedding.is_not(None))
    )
    moved = [
        Chunk(
            row.entry_id, row.namespace, int(row.chunk_index), "", {}, unpack_vector(row.embedding), row.embedding_model
        )
        for row in rows
    ]
    _write_vector_column(session, scope, moved)
