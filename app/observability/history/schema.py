"""The history tables: one row per run, one per span, as SQLAlchemy typed ORM models.

The migrations in `migrations/versions/` create exactly these tables; a test compares
the two, so a column added here without a migration fails. Strings have no length limit:
a record the topics accepted must not be refused by the store. Names carry a `ferry_`
prefix because the PostgreSQL database is often shared (Kafka Connect sinks write there
too). Times are stored in UTC and always come back timezone-aware, whatever the backend.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, LargeBinary, String, Text, event, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

RUNS_TABLE = "ferry_runs"
SPANS_TABLE = "ferry_spans"
VERSION_TABLE = "ferry_history_version"

# SQLAlchemy's default text form of a SQLite DATETIME, which `isoformat(" ", "microseconds")` writes too.
_SQLITE_DATETIME_FORMAT = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"


class UtcDateTime(TypeDecorator[datetime]):
    """A UTC instant: `timestamptz` on PostgreSQL, a naive UTC string on SQLite (which
    has no time zones and would otherwise hand back naive local-looking values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, `process_bind_param` and SQLite's `DATETIME` formatting fused into one
        C-level `isoformat`: the projector binds five instants per run. Same text as the two
        steps give (a test compares them); any other storage format takes the two steps."""
        storage_format = getattr(getattr(self.dialect_impl(dialect), "impl", None), "_storage_format", None)
        if dialect.name != "sqlite" or storage_format != _SQLITE_DATETIME_FORMAT:
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return value.isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: JSON(none_as_null=True)}


#: Failed runs by category (migration 0005), partial: only failed runs are in it. Its
#: PostgreSQL WHERE is given when PostgreSQL creates it (`_partial_on_postgresql`).
_FAILED_RUNS = "error_category IS NOT NULL"
_FAILED_RUNS_INDEX = Index(
    "ix_ferry_runs_error_category_started_at", "error_category", "started_at", sqlite_where=text(_FAILED_RUNS)
)


class RunRow(Base):
    """A run as its last result on `runs.results` describes it.

    `kind` is `run` (a plain agent run), `pipeline` (a pipeline's own result: usage summed
    over its stages) or `stage` (one stage of a pipeline); sums of usage skip `pipeline`
    rows so that nothing is counted twice. `root_run_id` is the run itself except for a
    stage, where it is the pipeline's run: every run of one request shares it.
    """

    __tablename__ = RUNS_TABLE

    run_id: Mapped[str] = mapped_column(String(), primary_key=True)
    kind: Mapped[str] = mapped_column(String())
    agent: Mapped[str] = mapped_column(String())
    status: Mapped[str] = mapped_column(String())
    tenant: Mapped[str] = mapped_column(String())
    deployment: Mapped[str | None] = mapped_column(String())
    trigger_source: Mapped[str] = mapped_column(String())
    trigger_metadata: Mapped[dict[str, Any]]
    pipeline: Mapped[str | None] = mapped_column(String())
    stage: Mapped[int | None] = mapped_column(BigInteger)
    root_run_id: Mapped[str] = mapped_column(String())
    parent_run_id: Mapped[str | None] = mapped_column(String())
    queued_at: Mapped[datetime | None]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    duration_ms: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    llm_calls: Mapped[int] = mapped_column(BigInteger)
    tool_calls: Mapped[int] = mapped_column(BigInteger)
    error_category: Mapped[str | None] = mapped_column(String())
    error_message: Mapped[str | None] = mapped_column(Text)
    error_retryable: Mapped[bool] = mapped_column(Boolean)
    partial: Mapped[bool] = mapped_column(Boolean)
    output: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))

    __table_args__ = (
        Index("ix_ferry_runs_started_at", "started_at"),
        Index("ix_ferry_runs_ended_at", "ended_at"),
        Index("ix_ferry_runs_agent_started_at", "agent", "started_at"),
        Index("ix_ferry_runs_tenant_started_at", "tenant", "started_at"),
        Index("ix_ferry_runs_root_run_id", "root_run_id"),
        _FAILED_RUNS_INDEX,
    )


@event.listens_for(_FAILED_RUNS_INDEX, "before_create")
def _partial_on_postgresql(index: Index, connection: Connection, **_: Any) -> None:
    """`postgresql_where`, given when PostgreSQL creates the index: named in `Index(...)` it
    would import PostgreSQL's dialect (~3 MiB, every driver's module) to be checked, in every
    process, SQLite-backed workers included. (Alembic compares no index's WHERE.)"""
    if connection.dialect.name == "postgresql" and index.dialect_options["postgresql"]["where"] is None:
        index.dialect_options["postgresql"]["where"] = text(_FAILED_RUNS)


class SpanRow(Base):
    """A finished span. Model, tokens, cost and error category are copied out of the
    attributes into columns so that usage by model and failures by category are plain
    SQL on either backend; `attributes` keeps everything (already redacted)."""

    __tablename__ = SPANS_TABLE

    span_id: Mapped[str] = mapped_column(String(), primary_key=True)
    trace_id: Mapped[str] = mapped_column(String())
    parent_span_id: Mapped[str | None] = mapped_column(String())
    run_id: Mapped[str] = mapped_column(String())
    kind: Mapped[str] = mapped_column(String())
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String())
    start_time: Mapped[datetime]
    end_time: Mapped[datetime]
    duration_ms: Mapped[float] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String())
    prompt_tokens: Mapped[int | None] = mapped_column(BigInteger)
    completion_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    error_category: Mapped[str | None] = mapped_column(String())
    attributes: Mapped[dict[str, Any]]

    __table_args__ = (
        Index("ix_ferry_spans_run_id", "run_id"),
        Index("ix_ferry_spans_trace_id", "trace_id"),
        Index("ix_ferry_spans_end_time", "end_time"),
        Index("ix_ferry_spans_kind_start_time", "kind", "start_time"),
    )


DOCUMENTS_TABLE = "ferry_documents"


class DocumentJson(TypeDecorator[Any]):
    """A document: JSON on SQLite and JSONB on PostgreSQL (indexable, compared by value).
    Not `JSON().with_variant(JSONB(), ...)`, which needs PostgreSQL's dialect imported
    (~3 MiB, every driver's module) by every process, SQLite-backed workers included."""

    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))


DOCUMENT_JSON = DocumentJson()


class DocumentRow(Base):
    """One document of Connic's `db_*` tools (app/compat/documents.py). The key starts
    with tenant and environment: every query names both, so no run reads another
    tenant's collections, and the primary key's index serves every lookup."""

    __tablename__ = DOCUMENTS_TABLE

    tenant: Mapped[str] = mapped_column(String(), primary_key=True)
    environment: Mapped[str] = mapped_column(String(), primary_key=True)
    collection: Mapped[str] = mapped_column(String(), primary_key=True)
    doc_id: Mapped[str] = mapped_column(String(), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(DOCUMENT_JSON)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


SESSIONS_TABLE = "ferry_sessions"


class SessionRow(Base):
    """The conversation of one Connic session (`session:` of an agent), keyed like the
    documents by tenant and environment first: a session key never reaches across tenants."""

    __tablename__ = SESSIONS_TABLE

    tenant: Mapped[str] = mapped_column(String(), primary_key=True)
    environment: Mapped[str] = mapped_column(String(), primary_key=True)
    agent: Mapped[str] = mapped_column(String(), primary_key=True)
    session_key: Mapped[str] = mapped_column(String(), primary_key=True)
    turns: Mapped[list[dict[str, Any]]] = mapped_column(DOCUMENT_JSON)
    updated_at: Mapped[datetime]


KNOWLEDGE_TABLE = "ferry_knowledge"


class KnowledgeRow(Base):
    """One chunk of an entry of Connic's knowledge tools (app/compat/knowledge.py), keyed by
    tenant and environment first like the documents; `namespace` is "" for none."""

    __tablename__ = KNOWLEDGE_TABLE

    tenant: Mapped[str] = mapped_column(String(), primary_key=True)
    environment: Mapped[str] = mapped_column(String(), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(), primary_key=True)
    chunk_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    content: Mapped[str] = mapped_column(Text)
    entry_metadata: Mapped[dict[str, Any]] = mapped_column(DOCUMENT_JSON)
    created_at: Mapped[datetime]
    # The chunk's embedding (float32, packed) and the model that made it (migration 0006);
    # None when the project ranks lexically.
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(), nullable=True)
