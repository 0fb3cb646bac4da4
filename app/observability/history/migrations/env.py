"""Alembic's entry point, driven only programmatically: `migrate.upgrade` passes the
connection (inside its transaction and lock) through `config.attributes`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from app.observability.history.schema import VERSION_TABLE, Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("history migrations run through app.observability.history.migrate, with a connection")
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
context.run_migrations()
