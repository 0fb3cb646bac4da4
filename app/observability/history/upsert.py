"""`CompiledUpsert`: one table's `insert … on conflict (key) do update`, compiled once for
a database and executed with the driver's own `executemany`.

The projector writes every run and span of a worker, so the write path is on every
run's CPU bill. Going through `Connection.execute(statement, rows)` cost SQLAlchemy a
statement rebuild, a cache lookup and a per-row, per-column parameter pass for each
batch: most of the projector's cost to a worker. Here the SQL text and each column's bind
processor (JSON encoding, the UTC time conversion of `UtcDateTime`, booleans…) are taken
from SQLAlchemy once, so a row is stored exactly as `Connection.execute` would store it,
on either backend, and a batch is one pass over tuples and one `executemany`. Errors still
come back wrapped as SQLAlchemy's (`OperationalError`, `IntegrityError`…), which is what
the projector sorts them by.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql.dml import Insert as PgInsert
    from sqlalchemy.dialects.sqlite.dml import Insert as SqliteInsert

_Processor = Callable[[Any], Any]


class CompiledUpsert:
    """Upsert rows given as tuples in `columns` order; the conflict key is `columns[0]`."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect) -> None:
        if set(columns) != set(table.columns.keys()) or len(columns) != len(table.columns):
            raise ValueError(f"the row layout does not match the columns of {table.name}: {list(columns)}")
        key = columns[0]
        # The dialect's own module only: a SQLite store does not load PostgreSQL's (~3 MiB).
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            insert: PgInsert | SqliteInsert = pg_insert(table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert = sqlite_insert(table)
        statement = insert.on_conflict_do_update(
            index_elements=[key], set_={name: insert.excluded[name] for name in columns if name != key}
        )
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        self.sql = compiled.string
        position = {name: index for index, name in enumerate(columns)}
        escaped = compiled.escaped_bind_names
        if dialect.positional:
            # The order the placeholders appear in, as indexes into a row.
            order = tuple(position[name] for name in compiled.positiontup or ())
            if sorted(order) != list(range(len(columns))):
                raise ValueError(f"the upsert of {table.name} does not bind each column once: {compiled.positiontup}")
            self._order: tuple[int, ...] | None = None if order == tuple(range(len(columns))) else order
            self._positional = True
            self._names: tuple[str, ...] = ()
        else:
            self._order = None
            self._positional = False
            self._names = tuple(escaped.get(name, name) for name in columns)
        processors = []
        for index, name in enumerate(columns):
            column_type = table.columns[name].type
            processor = column_type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors.append((index, processor))
        self._processors: tuple[tuple[int, _Processor], ...] = tuple(processors)

    def parameters(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        """The driver's parameters for `rows`: bound values in placeholder order (tuples), or
        by name (dicts) for a driver with named placeholders."""
        processors, order, names, positional = self._processors, self._order, self._names, self._positional
        out: list[Any] = []
        for row in rows:
            values = list(row)
            for index, processor in processors:
                values[index] = processor(values[index])
            if not positional:
                out.append(dict(zip(names, values, strict=True)))
            elif order is None:
                out.append(tuple(values))
            else:
                out.append(tuple(values[i] for i in order))
        return out

    def execute(self, connection: Connection, parameters: list[Any]) -> None:
        """Upsert rows turned into the driver's parameters by `parameters` (which needs no
        connection: the projector runs it on its event loop, this in a thread)."""
        if parameters:
            connection.exec_driver_sql(self.sql, parameters)
