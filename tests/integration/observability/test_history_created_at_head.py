"""On PostgreSQL as on SQLite, a history database created at once from the ORM schema (a
fresh one, opened without alembic) is the one the migrations build, and alembic upgrades it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from app.observability.history.migrate import head_revision, upgrade
from app.observability.history.schema import VERSION_TABLE
from tests.unit.observability.test_history_migrate import migrate_with_alembic, schema

pytestmark = pytest.mark.integration


def test_created_at_head_equals_migrated_and_alembic_sees_it_at_head(store_url: Callable[[], str]) -> None:
    by_migrations, at_once = migrate_with_alembic(create_engine(store_url())), create_engine(store_url())
    try:
        upgrade(at_once)
        expected = schema(by_migrations)
        assert any("WHERE" in str(definition) for _, definition in expected["index DDL"])  # 0005's partial index
        assert schema(at_once) == expected
        with at_once.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            assert context.get_current_heads() == (head_revision(),)
        migrate_with_alembic(at_once)  # nothing left to do
        assert schema(at_once) == expected
    finally:
        by_migrations.dispose()
        at_once.dispose()
