"""Bringing a history database to the schema this Ferry needs, on first use.

Alembic runs programmatically (no `alembic.ini`): its scripts ship inside the package
(`migrations/`), so `pip install` is all a deployment needs. Several workers may open a
fresh store at once, so the upgrade runs under a lock: a PostgreSQL advisory lock held
for the transaction, on SQLite a file lock beside the database (SQLite's own locking
does not cover alembic's "is the version table there yet?" check).

A database holding none of the history tables (PostgreSQL's is often shared) skips alembic
(~8 MiB with mako and pygments, which would stay loaded in every worker started on a fresh
home): the tables are created from the ORM schema and the head revision is written into
alembic's version table, its documented "create_all, then stamp head". A test holds this
to the schema the migrations build; alembic upgrades such a database like any other.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, text
from sqlalchemy.engine import Connection, Engine

from app.contracts.errors import ConfigError
from app.observability.history.schema import VERSION_TABLE, Base

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed 64-bit number: the key of the advisory lock all Ferry processes agree on.
_PG_LOCK_KEY = 0x6665727279_01
#: A migration's file: `v<revision>_<what>.py`, the revisions numbered in order.
_MIGRATION_FILE = re.compile(r"^v(\d{4})_\w+\.py$")


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision shipped, from the migrations' file names: alembic (~8 MiB with
    mako and pygments) is imported only when a database needs upgrading, not by every
    worker that opens an up-to-date store (a unit test holds this to alembic's own head)."""
    revisions = [m.group(1) for f in (MIGRATIONS / "versions").iterdir() if (m := _MIGRATION_FILE.match(f.name))]
    assert revisions, "the history package ships no migration"
    return max(revisions)


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision; a no-op when it is there."""
    head = head_revision()
    with engine.connect() as probe:
        if current_revision(probe) == head:
            return
    with _file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        current = current_revision(connection)
        if current == head:
            return
        if current is None and not set(Base.metadata.tables) & set(inspect(connection).get_table_names()):
            _create_at_head(connection, head)
            return
        from alembic import command
        from alembic.util import CommandError

        config = _config()
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except CommandError as exc:
            raise ConfigError(
                f"the run history database has schema revision {current!r}, unknown to this Ferry "
                f"(newest known: {head!r}): it was written by a newer Ferry — fix: upgrade Ferry, "
                "or point FERRY_DATABASE_URL at another database"
            ) from exc


def _create_at_head(connection: Connection, head: str) -> None:
    """The schema of an empty database, created as the migrations up to `head` would make it."""
    Base.metadata.create_all(connection)
    # Alembic's own version table (`version_table_impl`): a VARCHAR(32) primary key.
    version = Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    version.create(connection)
    connection.execute(version.insert().values(version_num=head))


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
