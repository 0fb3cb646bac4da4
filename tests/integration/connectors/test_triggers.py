"""Cron and object-storage triggers on the real broker, the buckets on a real S3 API server
(moto's server mode on loopback, driven with boto3 as any S3 client would)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aiokafka import AIOKafkaConsumer
from moto.server import ThreadedMotoServer

from app.connectors.triggers import Triggers
from app.contracts import RunRequest
from app.project import load_project
from app.project.project import Project
from app.streams import TopicNames, apply_topics
from app.streams.topic_plan import plan_topic, plan_topics
from tests.integration.connectors.conftest import child_env, ferry_command, free_port
from tests.integration.kafka_helpers import create_topics, produce, unique, wait_for

pytestmark = pytest.mark.integration

AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
PDF = b"%PDF-1.4\n% a tiny test document\n"


@pytest.fixture
def s3_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("S3_ENDPOINT", url)
    yield url
    server.stop()


def _s3(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1")


async def _project(tmp_path: Path, bootstrap: str, names: TopicNames, connectors: list[dict[str, Any]]) -> Project:
    (tmp_path / "agents").mkdir(exist_ok=True)
    agent = {"version": "1.0", "name": "echo", "description": "test agent", "model": "openai/sim-model",
             "system_prompt": "Answer briefly."}  # fmt: skip
    (tmp_path / "agents" / "echo.yaml").write_text(yaml.safe_dump(agent))
    (tmp_path / "connectors").mkdir(exist_ok=True)
    for connector in connectors:
        (tmp_path / "connectors" / f"{connector['name']}.yaml").write_text(yaml.safe_dump(connector))
    project = load_project(tmp_path)
    await apply_topics(
        bootstrap, [*plan_topics(project, names, None, 1), plan_topic(project, names, names.triggers, 1)]
    )
    return project


class Requests:
    """Every run request on a topic, read as it arrives (no group)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.seen: list[RunRequest] = []
        self._consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=100
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def run_ids(self) -> set[str]:
        return {r.run_id for r in self.seen}

    async def __aenter__(self) -> Requests:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            for records in (await self._consumer.getmany(timeout_ms=200)).values():
                self.seen.extend(RunRequest.model_validate_json(r.value) for r in records)


async def test_a_five_second_cron_with_two_workers_fires_once_per_tick_for_half_a_minute_across_a_stop(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """The leader stops mid-way; the other worker takes over, and the ticks that fell during
    the handover fire then (`missed: catch_up`), each once."""
    names = TopicNames(unique("cron") + ".")
    schedule = {"type": "schedule", "name": "every-5s", "agent": "echo", "cron": "*/5 * * * * *",
                "missed": "catch_up", "payload": {"report": "tick"}}  # fmt: skip
    project = await _project(tmp_path, kafka_bootstrap, names, [schedule])
    app_id = unique("ferry-cron")
    first, second = (Triggers(kafka_bootstrap, project, names, app_id) for _ in range(2))
    async with Requests(kafka_bootstrap, names.request("echo")) as requests:
        await first.start()
        await second.start()
        try:
            leaders = [t for t in (first, second) if t.leader is not None]
            await wait_for(lambda: any(t.leader.elected.is_set() for t in leaders if t.leader), 30, what="a leader")
            await wait_for(lambda: len(requests.seen) >= 3, 60, what="three ticks")
            leading = first if first.leader is not None and first.leader.elected.is_set() else second
            await leading.stop()  # the leading worker stops: the other takes over
            await wait_for(lambda: len(requests.seen) >= 7, 60, what="ticks after the leader stopped")
        finally:
            await first.stop()
            await second.stop()
    ticks = sorted(datetime.fromisoformat(r.trigger.metadata["tick"]) for r in requests.seen)
    assert len(requests.seen) == len(requests.run_ids)  # no tick sent twice
    assert all(b - a == timedelta(seconds=5) for a, b in itertools.pairwise(ticks)), ticks  # none lost
    assert ticks[-1] - ticks[0] >= timedelta(seconds=30)
    assert {r.input["report"] for r in requests.seen} == {"tick"}


async def _state_of(bootstrap: str, topic: str, key: str) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    state: dict[str, Any] = {}
    try:
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            for record in records:
                if record.key == key.encode() and record.value is not None:
                    state = json.loads(record.value)
    finally:
        await consumer.stop()
    return state


async def test_polling_a_bucket_of_200_objects_starts_200_runs_with_a_worker_killed_in_the_middle(
    tmp_path: Path, kafka_bootstrap: str, s3_url: str
) -> None:
    names = TopicNames(unique("poll") + ".")
    s3 = _s3(s3_url)
    s3.create_bucket(Bucket="invoices")
    for i in range(200):
        s3.put_object(
            Bucket="invoices", Key=f"in/{i:03}.pdf", Body=PDF + str(i).encode(), ContentType="application/pdf"
        )
    poll = {"type": "s3", "name": "uploads", "agent": "echo", "bucket": "invoices", "prefix": "in/",
            "suffixes": [".pdf"], "mode": "poll", "poll_interval_s": 1, "endpoint_url": "${S3_ENDPOINT}"}  # fmt: skip
    await _project(tmp_path, kafka_bootstrap, names, [poll])
    app_id = unique("ferry-poll")
    command = ferry_command("connectors", "run", "--project", str(tmp_path), "--broker", kafka_bootstrap,
                            "--topic-prefix", names.prefix, "--app-id", app_id)  # fmt: skip
    env = {**child_env(), **AWS, "S3_ENDPOINT": s3_url}
    async with Requests(kafka_bootstrap, names.request("echo")) as requests:
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
        try:
            await wait_for(lambda: len(requests.seen) >= 20, 90, what="the first runs started")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        at_kill = len(requests.run_ids)
        second = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
        try:
            await wait_for(lambda: len(requests.run_ids) >= 200, 120, what="every object started")

            async def all_recorded() -> bool:
                cursor = await _state_of(kafka_bootstrap, names.triggers, "s3:uploads")
                return len(cursor.get("recent", {})) == 200

            await wait_for(all_recorded, 60, what="the cursor holding every object")
            second_count = len(requests.run_ids)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    assert at_kill < 200, "the kill came after the last object: the test proved nothing"
    assert second_count == 200  # 200 objects, 200 runs: none missed, none started twice under another id
    keys = sorted(r.input["_s3"]["key"] for r in requests.seen)
    assert sorted(set(keys)) == [f"in/{i:03}.pdf" for i in range(200)]


async def test_an_s3_created_notification_runs_the_object_and_refuses_what_is_too_large_or_not_a_document(
    tmp_path: Path, kafka_bootstrap: str, s3_url: str
) -> None:
    names = TopicNames(unique("s3ev") + ".")
    events_topic = unique("s3.events")
    await create_topics(kafka_bootstrap, [events_topic])
    s3 = _s3(s3_url)
    s3.create_bucket(Bucket="invoices")
    s3.put_object(Bucket="invoices", Key="in/ACME May.pdf", Body=PDF, ContentType="application/pdf")
    s3.put_object(Bucket="invoices", Key="in/huge.pdf", Body=PDF * 100, ContentType="application/pdf")
    s3.put_object(Bucket="invoices", Key="in/notes.pdf", Body=b"hello", ContentType="text/plain")
    trigger = {"type": "s3", "name": "uploads", "agent": "echo", "bucket": "invoices", "prefix": "in/",
               "events_topic": events_topic, "endpoint_url": "${S3_ENDPOINT}", "max_bytes": 1000}  # fmt: skip
    project = await _project(tmp_path, kafka_bootstrap, names, [trigger])
    triggers = Triggers(kafka_bootstrap, project, names, unique("ferry-s3"))

    def created(key: str) -> bytes:
        record = {"eventName": "ObjectCreated:Put",
                  "s3": {"bucket": {"name": "invoices"}, "object": {"key": key.replace(" ", "+"), "size": 1}}}  # fmt: skip
        return json.dumps({"Records": [record]}).encode()

    async with Requests(kafka_bootstrap, names.request("echo")) as requests:
        await triggers.start()
        try:
            keys = ["in/huge.pdf", "in/notes.pdf", "in/ACME May.pdf", "in/ACME May.pdf"]  # the last one notified twice
            await produce(kafka_bootstrap, events_topic, [(None, created(key)) for key in keys])
            # the batch is handled in order: the refused objects were decided before these two
            await wait_for(lambda: len(requests.seen) >= 2, 60, what="the document's run, notified twice")
        finally:
            await triggers.stop()
    assert len(requests.run_ids) == 1  # twice notified, one run; the others refused
    request = requests.seen[0]
    [document] = request.input["files"]
    assert (document["name"], document["mime_type"]) == ("ACME May.pdf", "application/pdf")
    assert base64.b64decode(document["data"]) == PDF
    assert request.input["_s3"]["key"] == "in/ACME May.pdf" and request.trigger.source == "s3"
