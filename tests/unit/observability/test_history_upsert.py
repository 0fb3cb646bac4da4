"""The store's fast write path stores exactly what SQLAlchemy's own `insert … on conflict`
stores: the same text in every column of SQLite (times, JSON, booleans), so that the
speed-up changed no row and readers see what they saw before."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.types import TypeDecorator

from app.contracts import RunStatus
from app.contracts.errors import ErrorCategory
from app.observability.history import HistoryStore
from app.observability.history.projection import RUN_COLUMNS, SPAN_COLUMNS, run_values, span_values
from app.observability.history.schema import RunRow, SpanRow, UtcDateTime
from app.observability.history.upsert import CompiledUpsert
from tests.unit.observability.history_samples import failed_tool_spans, llm_run_spans, pipeline_results, result

RUNS: Table = RunRow.__table__  # type: ignore[assignment]
SPANS: Table = SpanRow.__table__  # type: ignore[assignment]


def sample_batch() -> tuple[list[Any], list[Any]]:
    results = [
        result("r1", output={"answer": "ünïcode ✓", "n": [1, 2.5, None]}),
        result("r2", status=RunStatus.FAILED, category=ErrorCategory.RATE_LIMIT, cost=None),
        result("r3", start=datetime(2026, 5, 4, 7, 0, 0, 5, tzinfo=timezone(timedelta(hours=-3)))),
        *pipeline_results("p1", ["extract", "check"]),
    ]
    return results, [*llm_run_spans("r1"), *failed_tool_spans("r2")]


def raw_rows(path: Path, table: str, key: str) -> list[tuple[Any, ...]]:
    """The rows as SQLite holds them, no type processing on the way out."""
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()


def test_rows_written_by_the_fast_path_are_those_sqlalchemy_writes(tmp_path: Path) -> None:
    results, spans = sample_batch()
    fast, reference = tmp_path / "fast.db", tmp_path / "reference.db"
    store = HistoryStore.open(f"sqlite:///{fast}")
    store.write(results, spans)
    store.close()
    # The reference: SQLAlchemy's own statement, with the rows as dicts (as the store wrote before).
    other = HistoryStore.open(f"sqlite:///{reference}")
    with other.engine.begin() as connection:
        for table, rows, key in (
            (RUNS, [run_values(r) for r in results], "run_id"),
            (SPANS, [span_values(s) for s in spans], "span_id"),
        ):
            insert = sqlite.insert(table)
            updates = {c.name: insert.excluded[c.name] for c in table.columns if c.name != key}
            connection.execute(insert.on_conflict_do_update(index_elements=[key], set_=updates), rows)
    other.close()
    for table, key in (("ferry_runs", "run_id"), ("ferry_spans", "span_id")):
        stored = raw_rows(fast, table, key)
        assert stored == raw_rows(reference, table, key)
        assert len(stored) == (len(results) if key == "run_id" else len(spans))


def test_the_latest_result_of_a_run_in_one_batch_wins(tmp_path: Path) -> None:
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    lost = result("r1", status=RunStatus.TIMEOUT, category=ErrorCategory.TIMEOUT)
    store.write([lost, result("r2"), result("r1", seconds=3)], [])
    record = store.run("r1")
    store.close()
    assert record is not None and record.status == "completed" and record.duration_ms == 3000


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 5, 4, 10, 0, 0, tzinfo=UTC),
        datetime(2026, 5, 4, 10, 0, 0, 123, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 12, 31, 23, 59, 59, 999999),  # naive: taken as UTC
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
        None,
    ],
)
def test_utc_times_are_bound_on_sqlite_as_the_two_step_conversion_binds_them(moment: datetime | None) -> None:
    dialect = sqlite.dialect()
    column_type = UtcDateTime().dialect_impl(dialect)
    fused = column_type.bind_processor(dialect)
    two_steps = TypeDecorator.bind_processor(column_type, dialect)  # type: ignore[arg-type]
    assert fused is not None and two_steps is not None
    assert fused(moment) == two_steps(moment)


def test_postgresql_gets_named_parameters_processed_as_sqlalchemy_would() -> None:
    upsert = CompiledUpsert(SPANS, SPAN_COLUMNS, psycopg.dialect())
    row = next(iter(span_values(s) for s in llm_run_spans("r1")))
    (parameters,) = upsert.parameters([tuple(row[c] for c in SPAN_COLUMNS)])
    assert set(parameters) == set(SPAN_COLUMNS)
    # psycopg's JSON wrapper around the attributes, as SQLAlchemy's psycopg dialect binds them.
    assert getattr(parameters["attributes"], "obj", None) == row["attributes"]
    assert parameters["start_time"] == row["start_time"] and parameters["start_time"].tzinfo is not None
    assert "::JSON" in upsert.sql
    assert "ON CONFLICT (span_id) DO UPDATE" in upsert.sql


def test_a_row_layout_that_is_not_the_tables_is_refused() -> None:
    with pytest.raises(ValueError, match="ferry_runs"):
        CompiledUpsert(RUNS, RUN_COLUMNS[:-1], sqlite.dialect())
    with pytest.raises(ValueError, match="ferry_spans"):
        CompiledUpsert(SPANS, (*SPAN_COLUMNS[:-1], "extra"), sqlite.dialect())
