"""A run result as the record a Kafka Connect JDBC sink can write: a schema'd JSON envelope.

The Debezium JDBC sink needs a value with a schema (a Connect Struct) to create and
upsert a table. With `JsonConverter` and `schemas.enable=true` that is

    {"schema": {"type": "struct", "fields": [{"field": "run_id", "type": "string", ...}, ...]},
     "payload": {"run_id": "…", ...}}

One field per column of the connector's `feed`; the record key is the key column's value
as plain text (read with `StringConverter`). A value that does not fit its column's type
(an amount printed as "unclear") becomes null rather than failing the row; every
column but the key is optional. Column types map to Connect types, two of them to
Debezium's logical names so PostgreSQL gets `json` and `timestamptz` columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from app.contracts import RunResult
from app.project.connectors import FeedColumn, FeedSpec, result_matches

_CONNECT_TYPES: Mapping[str, dict[str, str]] = {
    "string": {"type": "string"},
    "int64": {"type": "int64"},
    "float64": {"type": "double"},
    "boolean": {"type": "boolean"},
    "json": {"type": "string", "name": "io.debezium.data.Json"},
    "timestamp": {"type": "string", "name": "io.debezium.time.ZonedTimestamp"},
}
_MISSING = object()


def value_schema(feed: FeedSpec, name: str) -> dict[str, Any]:
    fields = [
        {"field": column, **_CONNECT_TYPES[spec.type], "optional": column != feed.key}
        for column, spec in feed.columns.items()
    ]
    return {"type": "struct", "name": name, "optional": False, "fields": fields}


def feed_record(feed: FeedSpec, schema: dict[str, Any], result: RunResult) -> tuple[bytes, bytes] | None:
    """(key, value) of `result` for `feed`, or None when the result is not fed or has no key."""
    if feed.agents and result.agent not in feed.agents:
        return None
    if feed.statuses and result.status.value not in feed.statuses:
        return None
    data = result.model_dump(mode="json")
    if not result_matches(feed.when, data):
        return None
    payload = {column: column_value(spec, data) for column, spec in feed.columns.items()}
    key = payload[feed.key]
    if key is None:
        return None
    text_key = key if isinstance(key, str) else json.dumps(key)
    return text_key.encode(), json.dumps({"schema": schema, "payload": payload}).encode()


def column_value(column: FeedColumn, data: Mapping[str, Any]) -> Any:
    value = _at(data, column.path)
    return None if value is _MISSING or value is None else _coerce(column.type, value)


def _at(data: Mapping[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _coerce(kind: str, value: Any) -> Any:
    if kind == "json":
        return json.dumps(value)
    if kind in ("string", "timestamp"):
        return value if isinstance(value, str) else json.dumps(value)
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "int64" and isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value)
    if number is None:
        return None
    if kind == "int64":
        return int(number) if number.is_integer() else None
    return number


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None
