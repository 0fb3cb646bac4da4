"""A record on a configured inbound topic becomes a run request of its agent, and a run;
`ferry connectors run` does it (and feeds the sink topics) as a process of its own."""

from __future__ import annotations

import asyncio
import json
import signal
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
from tests.integration.connectors.conftest import ROOT, child_env, ferry_command, produce_results, result
from tests.integration.kafka_helpers import collect, create_topics, produce, unique
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


async def _line(stream: asyncio.StreamReader, text: str, timeout: float) -> str:
    seen: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while line := (await stream.readline()).decode():
                seen.append(line)
                if text in line:
                    return line
    except TimeoutError:
        pass
    raise AssertionError(f"no line with {text!r} within {timeout:g}s; got {''.join(seen)[-2000:]}")


async def test_ferry_connectors_run_triggers_inbound_runs_and_feeds_sink_topics(
    kafka_bootstrap: str, project: Project, orders_topic: str, prefix: str
) -> None:
    names = TopicNames(prefix)
    fed = {
        "name": "echo-rows",
        "feed": {"agents": ["echo"], "columns": {"run_id": "run_id", "answer": "output.answer"}},
        "config": {"connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector", "topics": "sink.echo"},
    }
    (project.root / "connectors" / "echo-rows.yaml").write_text(yaml.safe_dump(fed))
    process = await asyncio.create_subprocess_exec(
        *ferry_command("connectors", "run", "--project", str(project.root), "--broker", kafka_bootstrap,
                       "--topic-prefix", prefix, "--app-id", unique("ferry-cli")),
        cwd=ROOT, env=child_env(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        await _line(process.stderr, "inbound: records of", 90)
        await produce(kafka_bootstrap, orders_topic, [(b"k", b'{"order_id": 1}')])
        [(key, request)] = await _requests(kafka_bootstrap, names.request("echo"), 1)
        assert key == "k" and request.input["order_id"] == 1 and request.input["_kafka"]["topic"] == orders_topic
        await produce_results(kafka_bootstrap, names, [result("run-fed", None)])
        [row] = await collect(kafka_bootstrap, prefix + "sink.echo", 1, 60)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert json.loads(row)["payload"] == {"run_id": "run-fed", "answer": "run-fed"}
