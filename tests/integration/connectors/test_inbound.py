"""A record on a configured inbound topic becomes a run request of its agent, and a run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer

from app.connectors.inbound import InboundConnector, inbound_specs
from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.project.project import Project
from app.streams import ResultWatcher, TopicNames, apply_topics
from app.streams.topic_plan import plan_topics
from tests.integration.kafka_helpers import create_topics, produce, unique
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

pytestmark = pytest.mark.integration


@pytest.fixture
def orders_topic() -> str:
    return unique("shop.orders")


@pytest.fixture
async def project(tmp_path: Path, kafka_bootstrap: str, orders_topic: str, prefix: str) -> Project:
    (tmp_path / "connectors").mkdir()
    inbound = {
        "type": "inbound",
        "name": "orders",
        "topic": orders_topic,
        "agent": "echo",
        "key_as_concurrency_key": True,
        "tenant": "shop",
    }
    (tmp_path / "connectors" / "orders.yaml").write_text(yaml.safe_dump(inbound))
    loaded = write_project(tmp_path, {"echo": llm_agent()})
    await create_topics(kafka_bootstrap, [orders_topic], partitions=2)
    await apply_topics(kafka_bootstrap, plan_topics(loaded, TopicNames(prefix), None, 1))
    return loaded


@pytest.fixture
async def inbound(kafka_bootstrap: str, project: Project, prefix: str) -> AsyncIterator[InboundConnector]:
    made = InboundConnector(
        kafka_bootstrap, project, TopicNames(prefix), inbound_specs(project), group_id=unique("ferry-inbound")
    )
    await made.start()
    await made.wait_ready()
    yield made
    await made.stop()


async def _requests(bootstrap: str, topic: str, count: int, timeout: float = 60) -> list[tuple[str, RunRequest]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    found: list[tuple[str, RunRequest]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found.extend((r.key.decode(), RunRequest.model_validate_json(r.value)) for r in records)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return found


async def test_an_inbound_record_runs_its_agent_with_its_kafka_metadata(
    kafka_bootstrap: str,
    project: Project,
    inbound: InboundConnector,
    orders_topic: str,
    prefix: str,
    simulator: LLMSimulator,
    make_worker: WorkerFactory,
) -> None:
    names = TopicNames(prefix)
    order: dict[str, Any] = {"order_id": 42, "items": ["tea"]}
    await produce(kafka_bootstrap, orders_topic, [(b"customer-7", json.dumps(order).encode()), (None, b"hello shop")])

    found = await _requests(kafka_bootstrap, names.request("echo"), 2)
    assert len(found) == 2, found
    by_input = {request.input.get("order_id", request.input.get("message")): (key, request) for key, request in found}
    key, request = by_input[42]
    assert key == "customer-7"  # the record key keys the request: one customer, one partition
    assert request.input["items"] == ["tea"]
    meta = request.input["_kafka"]
    assert (meta["topic"], meta["key"]) == (orders_topic, "customer-7")
    assert meta["partition"] in (0, 1) and meta["offset"] >= 0 and meta["timestamp"].startswith("20")
    assert request.tenant == "shop"
    assert request.trigger.source == "kafka" and request.trigger.metadata["connector"] == "orders"
    _, text_request = by_input["hello shop"]  # not JSON: the text as the message
    assert text_request.input["_kafka"]["key"] is None

    worker = make_worker(project, simulator.base_url)
    await worker.start()
    async with ResultWatcher(kafka_bootstrap, names, from_beginning=True) as watcher:
        results = await watcher.wait_for([r.run_id for _, r in found], timeout=60)
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED}, results
    assert len(results) == 2
    assert inbound.submitted == 2
