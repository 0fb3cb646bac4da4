"""The records fed to Kafka Connect sinks and the configs `ferry connectors apply` sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.connectors.sinks import feed_record, resolved_config, value_schema
from app.contracts import RunResult, RunStatus
from app.contracts.errors import ConfigError
from app.project import FeedSpec, KafkaConnectSpec, load_project
from app.streams import TopicNames

ROOT = Path(__file__).resolve().parents[3]


def _result(**fields: object) -> RunResult:
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    base: dict[str, object] = {
        "run_id": "r1", "agent": "invoice-pipeline", "status": RunStatus.COMPLETED, "started_at": now,
        "ended_at": now, "duration_ms": 3.0,
        "output": {"record_key": "k1", "total": "119.00", "tax": "unclear", "line_items": [{"amount": "1.50"}],
                   "line_item_count": 1, "needs_review": False},
    }  # fmt: skip
    return RunResult.model_validate(base | fields)


FEED = FeedSpec.model_validate(
    {
        "agents": ["invoice-pipeline"],
        "statuses": ["completed"],
        "key": "record_key",
        "columns": {
            "record_key": "output.record_key",
            "total": {"path": "output.total", "type": "float64"},
            "tax": {"path": "output.tax", "type": "float64"},
            "line_items": {"path": "output.line_items", "type": "json"},
            "line_item_count": {"path": "output.line_item_count", "type": "int64"},
            "needs_review": {"path": "output.needs_review", "type": "boolean"},
            "ended_at": {"path": "ended_at", "type": "timestamp"},
            "missing": "output.nowhere",
        },
    }
)


def test_a_fed_result_is_a_schemad_envelope_keyed_by_its_key_column() -> None:
    made = feed_record(FEED, value_schema(FEED, "ferry.invoices"), _result())
    assert made is not None
    key, value = made
    assert key == b"k1"
    envelope = json.loads(value)
    assert envelope["payload"] == {
        "record_key": "k1",
        "total": 119.0,
        "tax": None,  # "unclear" does not fit a number column
        "line_items": '[{"amount": "1.50"}]',
        "line_item_count": 1,
        "needs_review": False,
        "ended_at": "2026-12-01T15:00:00Z",
        "missing": None,
    }
    fields = {f["field"]: f for f in envelope["schema"]["fields"]}
    assert fields["record_key"]["optional"] is False and fields["total"]["optional"] is True
    assert fields["total"]["type"] == "double"
    assert fields["line_items"]["name"] == "io.debezium.data.Json"
    assert fields["ended_at"]["name"] == "io.debezium.time.ZonedTimestamp"


def test_results_the_feed_does_not_select_are_not_fed() -> None:
    schema = value_schema(FEED, "s")
    assert feed_record(FEED, schema, _result(agent="other")) is None
    assert feed_record(FEED, schema, _result(status=RunStatus.FAILED)) is None
    assert feed_record(FEED, schema, _result(output={"total": 1})) is None  # no key


def test_a_feed_key_must_be_one_of_its_columns() -> None:
    with pytest.raises(ValidationError, match="key 'id' must be one of the columns"):
        FeedSpec.model_validate({"key": "id", "columns": {"run_id": "run_id"}})


def test_apply_fills_placeholders_from_the_environment_and_prefixes_a_fed_topic() -> None:
    spec = load_project(ROOT).connectors["ferry-runs-postgres"]
    assert isinstance(spec, KafkaConnectSpec)
    env = {"FERRY_SINK_JDBC_URL": "jdbc:postgresql://db/x", "FERRY_SINK_DB_USER": "u", "FERRY_SINK_DB_PASSWORD": "pw"}
    config = resolved_config(spec, TopicNames("acme."), env)
    assert config["connection.password"] == "pw"
    assert config["topics"] == "acme.sink.runs"
    with pytest.raises(ConfigError, match="FERRY_SINK_DB_PASSWORD"):
        resolved_config(spec, TopicNames(), {k: v for k, v in env.items() if k != "FERRY_SINK_DB_PASSWORD"})
