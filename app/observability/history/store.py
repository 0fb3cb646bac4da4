"""`HistoryStore`: the run-history database: opened (and migrated) on first use, written
in idempotent batches, pruned by age, read by the CLI.

Writes are upserts keyed by run id and span id in one transaction per batch, so a batch
written twice (a redelivery after a crash, a replay of the topics) leaves the same rows.
The store is synchronous SQLAlchemy: the projector calls it from a thread, the CLI
directly. The projector builds a batch's parameters itself (`prepare`, on its event loop)
and only the database's work runs in the thread (`write_prepared`). SQLite runs in WAL
mode so that `ferry runs` reads while a worker writes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, delete, event, func, select
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.contracts import RunResult, SpanEvent
from app.contracts.errors import ConfigError, ServiceUnreachableError
from app.observability.history import queries
from app.observability.history.migrate import upgrade
from app.observability.history.projection import RUN_COLUMNS, SPAN_COLUMNS, Row, latest_by_key, run_row, span_row
from app.observability.history.records import PruneReport, RunRecord, SpanRecord, UsageLine
from app.observability.history.schema import RunRow, SpanRow
from app.observability.history.settings import DATABASE_URL_ENV, database_url, describe
from app.observability.history.upsert import CompiledUpsert

log = logging.getLogger(__name__)

#: Rows deleted per statement when pruning, so a large backlog never holds a long lock.
PRUNE_CHUNK = 5000
CONNECT_TIMEOUT_S = 10


@dataclass
class PreparedBatch:
    """Rows of `ferry_runs` and `ferry_spans` as the database driver binds them."""

    runs: list[Any] = field(default_factory=list)
    spans: list[Any] = field(default_factory=list)

    def extend(self, more: PreparedBatch) -> None:
        self.runs.extend(more.runs)
        self.spans.extend(more.spans)


class HistoryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._upsert_runs = CompiledUpsert(RunRow.__table__, RUN_COLUMNS, engine.dialect)  # type: ignore[arg-type]
        self._upsert_spans = CompiledUpsert(SpanRow.__table__, SPAN_COLUMNS, engine.dialect)  # type: ignore[arg-type]

    @classmethod
    def open(cls, url: URL | str | None = None, *, create: bool = True) -> HistoryStore:
        """The store at `url` (default: `$FERRY_DATABASE_URL`, else SQLite under the Ferry
        home), its schema created or upgraded. With `create=False` a missing SQLite file is
        a `ConfigError` instead of a new empty store (a reader in the wrong folder)."""
        target = url if isinstance(url, URL) else database_url(url)
        if target.get_backend_name() == "sqlite":
            _prepare_sqlite_file(target, create)
        engine = _engine_for(target)
        try:
            upgrade(engine)
        except OperationalError as exc:
            engine.dispose()
            raise ServiceUnreachableError(
                "the run-history database",
                describe(target),
                f"start it, or set {DATABASE_URL_ENV} to a reachable database ({_reason(exc)})",
            ) from None
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def describe(self) -> str:
        return describe(self.engine.url)

    # -- writing ---------------------------------------------------------------------

    def write(self, results: Sequence[RunResult] = (), spans: Sequence[SpanEvent] = ()) -> None:
        """Upsert a batch in one transaction: all of it is stored, or none."""
        runs = latest_by_key(map(run_row, results))
        span_rows = latest_by_key(map(span_row, spans))
        self.write_prepared(self.prepare(runs, span_rows))

    def prepare(self, runs: Sequence[Row], spans: Sequence[Row]) -> PreparedBatch:
        """The driver's parameters of `run_row`s and `span_row`s, one row per key
        (`latest_by_key`): no database work, so callable a slice at a time on an event loop."""
        return PreparedBatch(self._upsert_runs.parameters(runs), self._upsert_spans.parameters(spans))

    def write_prepared(self, batch: PreparedBatch) -> None:
        """`write`, for a batch already prepared: one transaction."""
        if not batch.runs and not batch.spans:
            return
        with self.engine.begin() as connection:
            self._upsert_runs.execute(connection, batch.runs)
            self._upsert_spans.execute(connection, batch.spans)

    def write_each(
        self, results: Sequence[RunResult] = (), spans: Sequence[SpanEvent] = ()
    ) -> list[tuple[RunResult | SpanEvent, SQLAlchemyError]]:
        """Upsert record by record; return those the database refused, with why.

        The slow path, for a batch the database refused as a whole: one record it cannot
        hold (a value out of its range…) must not block the history behind it."""
        refused: list[tuple[RunResult | SpanEvent, SQLAlchemyError]] = []
        for result in results:
            try:
                self.write([result], ())
            except SQLAlchemyError as exc:
                refused.append((result, exc))
        for span in spans:
            try:
                self.write((), [span])
            except SQLAlchemyError as exc:
                refused.append((span, exc))
        return refused

    def prune(self, before: datetime) -> PruneReport:
        """Delete runs that ended and spans that finished before `before`."""
        runs = _delete_chunks(self.engine, RunRow.__table__, RunRow.run_id, RunRow.ended_at, before)  # type: ignore[arg-type]
        spans = _delete_chunks(self.engine, SpanRow.__table__, SpanRow.span_id, SpanRow.end_time, before)  # type: ignore[arg-type]
        return PruneReport(runs=runs, spans=spans)

    # -- reading ---------------------------------------------------------------------

    def runs(self, where: queries.RunFilter | None = None) -> list[RunRecord]:
        with self._session() as session:
            return queries.list_runs(session, where or queries.RunFilter())

    def run(self, run_id: str) -> RunRecord | None:
        """By id or unique id prefix; raises `queries.AmbiguousRunId`."""
        with self._session() as session:
            return queries.find_run(session, run_id)

    def span_run_ids(self, run_id: str) -> list[str]:
        with self._session() as session:
            return queries.span_run_ids(session, run_id)

    def runs_of_root(self, root_run_id: str) -> list[RunRecord]:
        with self._session() as session:
            return queries.runs_of_root(session, root_run_id)

    def spans(self, run_ids: Sequence[str]) -> list[SpanRecord]:
        with self._session() as session:
            return queries.spans_of(session, run_ids)

    def usage(self, by: queries.UsageBy, since: datetime | None = None) -> list[UsageLine]:
        with self._session() as session:
            return queries.usage(session, by, since)

    def counts(self) -> tuple[int, int]:
        """(runs, spans) stored: for tests, benchmarks and `ferry history status`."""
        with self._session() as session:
            runs = session.scalar(select(func.count()).select_from(RunRow)) or 0
            spans = session.scalar(select(func.count()).select_from(SpanRow)) or 0
            return int(runs), int(spans)

    def _session(self) -> Session:
        return self._sessions()


def _engine_for(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        # Without a connect timeout an unanswering host holds a start (or a batch) for minutes.
        connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_S}
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    # A worker's projector writes while CLI commands read, possibly from other processes:
    # WAL lets readers through, and a writer waits for another one instead of failing.
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def _prepare_sqlite_file(url: URL, create: bool) -> None:
    database = url.database
    if not database or database == ":memory:":
        return
    path = Path(database)
    if path.exists():
        return
    if not create:
        raise ConfigError(
            f"no run history at {path} — fix: run `ferry worker` or `ferry history project` "
            f"here first, or set FERRY_HOME / {DATABASE_URL_ENV} to where the history is"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the run-history folder {path.parent}: {exc.strerror or exc}") from None


def _delete_chunks(engine: Engine, table: Table, key: Any, age: Any, before: datetime) -> int:
    deleted = 0
    while True:
        chunk = select(key).where(age < before).limit(PRUNE_CHUNK)
        with engine.begin() as connection:
            count = connection.execute(delete(table).where(key.in_(chunk))).rowcount
        deleted += count
        if count < PRUNE_CHUNK:
            return deleted


def _reason(exc: OperationalError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
