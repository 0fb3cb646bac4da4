"""A history database created at once from the ORM schema (what a fresh home gets, without
alembic) is the database the migrations build, and alembic takes it over from there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from app.observability.history.migrate import _config, head_revision, upgrade
from app.observability.history.schema import VERSION_TABLE, Base
from app.observability.history.store import HistoryStore
from tests.unit.observability.history_samples import llm_run_spans, result


def migrated(path: Path) -> Engine:
    """An empty SQLite database taken to head by alembic, migration by migration."""
    return migrate_with_alembic(create_engine(f"sqlite:///{path}"))


def migrate_with_alembic(engine: Engine) -> Engine:
    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return engine


def created(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def schema(engine: Engine) -> dict[str, Any]:
    """Everything a query or a later migration depends on, table by table."""
    inspector = inspect(engine)
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        tables[table] = {
            "columns": [
                {**column, "type": repr(column["type"]), "default": column["default"]}
                for column in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table),
            "indexes": sorted(
                (
                    {**index, "dialect_options": {k: str(v) for k, v in index.get("dialect_options", {}).items()}}
                    for index in inspector.get_indexes(table)
                ),
                key=lambda index: str(index["name"]),
            ),
            "unique": inspector.get_unique_constraints(table),
            "foreign_keys": inspector.get_foreign_keys(table),
        }
    with engine.connect() as connection:
        # The indexes' DDL as well: the partial index's WHERE (0005) word for word.
        if engine.dialect.name == "sqlite":
            ddl = "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
        else:
            ddl = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname"
        tables["index DDL"] = [tuple(row) for row in connection.execute(text(ddl))]
    return tables


def test_the_migrations_build_exactly_the_schema_the_code_maps(tmp_path: Path) -> None:
    with migrated(tmp_path / "migrated.db").connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, Base.metadata) == []
        version = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    assert version == head_revision()


def test_a_database_created_at_head_is_the_one_the_migrations_build(tmp_path: Path) -> None:
    by_migrations, at_once = migrated(tmp_path / "migrated.db"), created(tmp_path / "created.db")
    expected = schema(by_migrations)
    assert {"ferry_runs", "ferry_spans", "ferry_knowledge", VERSION_TABLE} <= set(expected)
    assert any("WHERE error_category IS NOT NULL" in str(sql) for _, sql in expected["index DDL"])
    assert schema(at_once) == expected
    for engine in (by_migrations, at_once):
        with engine.connect() as connection:
            assert connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all() == [(head_revision(),)]


def test_alembic_sees_a_database_created_at_head_at_head_and_upgrades_nothing(tmp_path: Path) -> None:
    engine = created(tmp_path / "created.db")
    before = schema(engine)
    with engine.begin() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        assert context.get_current_heads() == (ScriptDirectory.from_config(_config()).get_current_head(),)
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    assert schema(engine) == before


def test_alembic_can_take_a_database_created_at_head_back_and_forth(tmp_path: Path) -> None:
    """A later migration runs on it as on a migrated one: stepping the last one down and up works."""
    engine = created(tmp_path / "created.db")
    before = schema(engine)
    with engine.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")
        assert "embedding" not in {c["name"] for c in inspect(connection).get_columns("ferry_knowledge")}
        command.upgrade(config, "head")
    assert schema(engine) == before


def test_a_store_created_at_head_keeps_what_it_is_given(tmp_path: Path) -> None:
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'history.db'}")
    store.write([result("r1")], llm_run_spans("r1"))
    store.close()
    again = HistoryStore.open(f"sqlite:///{tmp_path / 'history.db'}")
    assert [r.run_id for r in again.runs()] == ["r1"]
    assert {s.run_id for s in again.spans(["r1"])} == {"r1"}
    again.close()


def test_a_database_holding_history_tables_but_no_version_is_left_to_alembic(tmp_path: Path) -> None:
    """Only a database with none of the history tables is created at once: anything else
    (here, a table of a failed earlier start) goes through the migrations, which refuse it."""
    engine = create_engine(f"sqlite:///{tmp_path / 'odd.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE ferry_runs (run_id VARCHAR PRIMARY KEY)"))
    with pytest.raises(OperationalError, match="table ferry_runs already exists"):
        upgrade(engine)


def test_a_sqlite_store_loads_neither_alembic_nor_postgresqls_dialect(tmp_path: Path) -> None:
    """Every worker opens one: alembic (~8 MiB) is for upgrades, PostgreSQL's dialect (~3 MiB)
    for PostgreSQL. In a clean interpreter: a new store created, written to and read."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    script = (
        "import sys; from app.observability.history.store import HistoryStore; "
        "from tests.unit.observability.history_samples import llm_run_spans, result; "
        f"store = HistoryStore.open({url!r}); store.write([result('r1')], llm_run_spans('r1')); "
        "print(store.counts()[0]); store.close(); "
        "print(sorted({m.split('.')[0] if m.startswith('alembic') else m for m in sys.modules "
        "if m.startswith(('alembic', 'sqlalchemy.dialects.postgresql'))}))"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120, cwd=root
    )
    runs, loaded = done.stdout.strip().splitlines()[-2:]
    assert (runs, loaded) == ("1", "[]")
