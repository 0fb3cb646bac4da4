"""Kafka Connect's Debezium JDBC sink writes schema'd records from a topic into PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlparse

from app.devstack.connect import rest
from app.devstack.errors import DevStackError
from app.devstack.postgres import query
from app.devstack.service import ServiceInfo
from tests.integration.kafka_helpers import create_topics, produce, unique

ROWS = 25


def _envelope(fields: list[tuple[str, str, bool]], payload: dict) -> bytes:
    schema = {
        "type": "struct",
        "optional": False,
        "fields": [{"field": name, "type": kind, "optional": optional} for name, kind, optional in fields],
    }
    return json.dumps({"schema": schema, "payload": payload}).encode()


async def test_jdbc_sink_upserts_records_into_postgres(
    kafka_bootstrap: str, postgres: ServiceInfo, kafka_connect: ServiceInfo
) -> None:
    topic = unique("results-sink")
    table = topic.replace("-", "_")
    await create_topics(kafka_bootstrap, [topic])
    pg = urlparse(postgres.address)
    connector = unique("jdbc-sink")
    rest(
        f"{kafka_connect.address}/connectors/{connector}/config",
        "PUT",
        {
            "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
            "tasks.max": "1",
            "topics": topic,
            "connection.url": f"jdbc:postgresql://{pg.hostname}:{pg.port}{pg.path}",
            "connection.username": pg.username,
            "connection.password": "unused-with-trust-auth",
            "insert.mode": "upsert",
            "primary.key.mode": "record_key",
            "primary.key.fields": "run_id",
            "schema.evolution": "basic",
            "collection.name.format": table,
        },
    )
    key_fields = [("run_id", "string", False)]
    value_fields = [("run_id", "string", False), ("status", "string", False), ("total_tokens", "int64", True)]
    records = [
        (
            _envelope(key_fields, {"run_id": f"run-{i}"}),
            _envelope(value_fields, {"run_id": f"run-{i}", "status": "completed", "total_tokens": 10 * i}),
        )
        for i in range(ROWS)
    ]
    # The same key twice: the sink upserts, so the later status wins and no row is doubled.
    records.append(
        (
            _envelope(key_fields, {"run_id": "run-0"}),
            _envelope(value_fields, {"run_id": "run-0", "status": "failed", "total_tokens": 1}),
        )
    )
    await produce(kafka_bootstrap, topic, records)

    port = int(pg.port or 5432)
    rows: list[list[str]] = []
    for _ in range(240):
        try:
            rows = query(port, f"select run_id, status, total_tokens from {table} order by run_id")
        except DevStackError:  # the table appears with the sink's first batch
            rows = []
        if len(rows) == ROWS and ["run-0", "failed", "1"] in rows:
            break
        await asyncio.sleep(0.5)
    status = rest(f"{kafka_connect.address}/connectors/{connector}/status")
    assert status["connector"]["state"] == "RUNNING", status
    assert len(rows) == ROWS
    assert ["run-0", "failed", "1"] in rows
    assert ["run-7", "completed", "70"] in rows
    rest(f"{kafka_connect.address}/connectors/{connector}", "DELETE")
