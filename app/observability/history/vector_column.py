"""The knowledge chunks' pgvector column on PostgreSQL: found or made once per store.

When the database has the `vector` extension (or lets us create it), a chunk's embedding
lives in `ferry_knowledge.embedding_vector` (type `vector`, no fixed dimension, since
models differ) and nearest chunks are found in SQL. The column is not in the ORM schema
nor in a migration: it exists only where pgvector does, and pgvector can arrive (or be
allowed) after the schema migrated, so the store adds it when it first sees the
extension. Anything refusing (no extension, no right to create it or to alter the table):
the store keeps vectors in the `embedding` blob and Ferry ranks in Python.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import UserDefinedType

from app.observability.history.schema import KNOWLEDGE_TABLE

VECTOR_COLUMN = "embedding_vector"


class PgVector(UserDefinedType[Sequence[float]]):
    """pgvector's `vector`, bound in its text form (`[0.1,0.2]`); read back with `decode_sent`."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "vector"

    def bind_processor(self, dialect: Dialect) -> Callable[[Sequence[float] | None], str | None]:
        def literal(value: Sequence[float] | None) -> str | None:
            # repr of a float32 widened to float is exact, so the server's float32 is the same.
            return None if value is None else "[" + ",".join(repr(float(x)) for x in value) + "]"

        return literal


def float32s(data: bytes, byteorder: str) -> tuple[float, ...]:
    """Packed float32s in `byteorder` ("little" or "big") as floats, whatever the machine's."""
    values = array("f")
    values.frombytes(data)
    if sys.byteorder != byteorder:
        values.byteswap()
    return tuple(values)


def decode_sent(data: bytes) -> tuple[float, ...]:
    """A vector from `vector_send(...)`: its binary form, 4 bytes of header then big-endian
    float32s (a quarter of the cost of parsing the text form)."""
    return float32s(data[4:], "big")


def prepare_vector_column(engine: Engine) -> bool:
    """Whether chunks' vectors go in the pgvector column on this database, creating the
    extension and the column when allowed. Called once per store."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as connection:
        try:
            with connection.begin():
                return _make_ready(connection)
        except DBAPIError:
            pass  # not allowed, or another process made them meanwhile
    with engine.connect() as connection, connection.begin():
        return _extension_installed(connection) and _column_present(connection)


def _make_ready(connection: Connection) -> bool:
    if not _extension_installed(connection):
        available = connection.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
        if available is None:
            return False
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    if not _column_present(connection):
        connection.execute(text(f"ALTER TABLE {KNOWLEDGE_TABLE} ADD COLUMN IF NOT EXISTS {VECTOR_COLUMN} vector"))
    return True


def _extension_installed(connection: Connection) -> bool:
    return connection.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).first() is not None


def _column_present(connection: Connection) -> bool:
    found = connection.execute(
        text(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :table AND column_name = :column"
        ),
        {"table": KNOWLEDGE_TABLE, "column": VECTOR_COLUMN},
    )
    return found.first() is not None
