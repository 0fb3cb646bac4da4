"""What an inbound record becomes: the run request's input, key and trigger; and how the project checks it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from aiokafka import ConsumerRecord

from app.connectors.inbound import inbound_request
from app.project import InboundConnectorSpec, ProjectError, load_project

SPEC = InboundConnectorSpec(type="inbound", name="orders", topic="shop.orders", agent="triage", tenant="shop")


def _record(value: bytes | None, key: bytes | None = b"c-7") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="shop.orders", partition=1, offset=9, timestamp=1764601200000, timestamp_type=0, key=key,
        value=value, checksum=None, serialized_key_size=0, serialized_value_size=0, headers=(),
    )  # fmt: skip


def test_a_json_object_is_the_input_as_is_with_kafka_metadata() -> None:
    request = inbound_request(SPEC, _record(b'{"order": 1}'))
    assert request.input == {
        "order": 1,
        "_kafka": {
            "topic": "shop.orders",
            "partition": 1,
            "offset": 9,
            "timestamp": "2025-12-01T15:00:00+00:00",
            "key": "c-7",
        },
    }
    assert request.agent == "triage" and request.tenant == "shop"
    assert request.trigger.source == "kafka"
    assert request.run_id == inbound_request(SPEC, _record(b"{}")).run_id  # one record, one run id


@pytest.mark.parametrize(
    ("raw", "message"), [(b"[1, 2]", [1, 2]), (b"plain text", "plain text"), (b"\xff\xfe", "//4=")]
)
def test_anything_but_an_object_becomes_the_message(raw: bytes, message: object) -> None:
    assert inbound_request(SPEC, _record(raw, key=None)).input["message"] == message


def test_an_inbound_connector_must_name_an_agent_of_the_project(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "connectors").mkdir()
    agent = {"version": "1.0", "name": "triage", "description": "d", "model": "openai/m", "system_prompt": "p",
             "concurrency": {"key": "_kafka.key"}}  # fmt: skip
    (tmp_path / "agents" / "triage.yaml").write_text(yaml.safe_dump(agent))
    inbound = {"type": "inbound", "name": "orders", "topic": "shop.orders", "agent": "triage"}
    (tmp_path / "connectors" / "orders.yaml").write_text(yaml.safe_dump(inbound))
    assert isinstance(load_project(tmp_path).connectors["orders"], InboundConnectorSpec)
    (tmp_path / "connectors" / "orders.yaml").write_text(yaml.safe_dump(inbound | {"agent": "nobody"}))
    with pytest.raises(ProjectError, match="no agent named 'nobody'"):
        load_project(tmp_path)
