"""The API's own tables, in the run-history database: API keys and accepted submissions.

    ferry_api_keys          one row per key: tenant, admin flag, sha256 of its secret, revoked_at
    ferry_api_submissions   one row per run the API accepted: tenant, agent, idempotency key
                            and body hash (a retry with another body is a 409), queued flag

They sit beside the history (same `FERRY_DATABASE_URL` or SQLite file) but are not part
of it: the history is a projection that can be dropped and rebuilt from Kafka, keys and
submissions cannot. Their schema is created on first use (`create_all`, idempotent);
they change rarely enough that a migration is for when they do.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime

from sqlalchemy import Boolean, Index, String, delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from app.observability.history.schema import UtcDateTime

KEYS_TABLE = "ferry_api_keys"
SUBMISSIONS_TABLE = "ferry_api_submissions"


class _Base(DeclarativeBase):
    pass


class KeyRow(_Base):
    __tablename__ = KEYS_TABLE

    key_id: Mapped[str] = mapped_column(String(), primary_key=True)
    tenant: Mapped[str] = mapped_column(String())
    admin: Mapped[bool] = mapped_column(Boolean)
    secret_sha256: Mapped[str] = mapped_column(String())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class SubmissionRow(_Base):
    __tablename__ = SUBMISSIONS_TABLE

    run_id: Mapped[str] = mapped_column(String(), primary_key=True)
    tenant: Mapped[str] = mapped_column(String())
    agent: Mapped[str] = mapped_column(String())
    idempotency_key: Mapped[str | None] = mapped_column(String(), nullable=True)
    body_sha256: Mapped[str] = mapped_column(String())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    queued: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (
        Index("ux_ferry_api_submissions_tenant_key", "tenant", "idempotency_key", unique=True),
        Index("ix_ferry_api_submissions_tenant_created", "tenant", "created_at"),
    )


class ApiStore:
    """Synchronous, like the history store: the API calls it from threads.

    On SQLite, writes from this process take a lock first: SQLite lets one writer in at a
    time and makes the others sleep and poll, which under concurrent POSTs cost more than
    the writes themselves (p99 ×3 measured in bench/bench_api.py). PostgreSQL needs none.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        _Base.metadata.create_all(engine, checkfirst=True)

    # -- keys ------------------------------------------------------------------------

    def add_key(self, key_id: str, tenant: str, secret_sha256: str, *, admin: bool) -> KeyRow:
        row = KeyRow(
            key_id=key_id, tenant=tenant, admin=admin, secret_sha256=secret_sha256, created_at=_now(), revoked_at=None
        )
        with self._write_lock, self._sessions.begin() as session:
            session.add(row)
        return row

    def key(self, key_id: str) -> KeyRow | None:
        with self._sessions() as session:
            return session.get(KeyRow, key_id)

    def keys(self) -> list[KeyRow]:
        with self._sessions() as session:
            return list(session.scalars(select(KeyRow).order_by(KeyRow.tenant, KeyRow.created_at)))

    def revoke_key(self, key_id: str) -> bool:
        """True when a live key was revoked; False when there is none by that id (or it was already)."""
        statement = update(KeyRow).where(KeyRow.key_id == key_id, KeyRow.revoked_at.is_(None)).values(revoked_at=_now())
        with self._write_lock, self.engine.begin() as connection:
            return bool(connection.execute(statement).rowcount)

    # -- submissions -----------------------------------------------------------------

    def claim(self, row: SubmissionRow) -> tuple[SubmissionRow, bool]:
        """Record a submission: (it, True); or (the one already there for its run id or its
        (tenant, idempotency key), False). The first writer wins; whoever asks second learns of it."""
        try:
            with self._write_lock, self._sessions.begin() as session:
                session.add(row)
            return row, True
        except IntegrityError:
            existing = self.submission(row.run_id) or self._by_key(row.tenant, row.idempotency_key)
            if existing is None:
                raise
            return existing, False

    def release(self, run_id: str) -> None:
        """Forget a submission that never reached Kafka, so that a retry claims it afresh."""
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                delete(SubmissionRow).where(SubmissionRow.run_id == run_id, SubmissionRow.queued.is_(False))
            )

    def mark_queued(self, run_id: str) -> None:
        with self._write_lock, self._sessions.begin() as session:
            session.execute(update(SubmissionRow).where(SubmissionRow.run_id == run_id).values(queued=True))

    def submission(self, run_id: str) -> SubmissionRow | None:
        with self._sessions() as session:
            return session.get(SubmissionRow, run_id)

    def _by_key(self, tenant: str, idempotency_key: str | None) -> SubmissionRow | None:
        if idempotency_key is None:
            return None
        with self._sessions() as session:
            query = select(SubmissionRow).where(
                SubmissionRow.tenant == tenant, SubmissionRow.idempotency_key == idempotency_key
            )
            return session.scalars(query).first()


def _now() -> datetime:
    return datetime.now(UTC)
