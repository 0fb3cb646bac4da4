"""The invoice example as its README tells it: invoices uploaded to object storage are
extracted, validated, scored and stored, and downstream systems are notified.

Everything is real: a local S3 API server (moto's server mode) holds the bucket; its
"object created" notifications reach Kafka as an S3-compatible store sends them; a
`ferry worker` process runs the example project (the invoice pipeline on the LLM
simulator's invoice scenario, the real PDF and OCR tools, the S3 trigger, the sink feeder
and the webhook connector); Kafka Connect's JDBC sink writes the rows into PostgreSQL;
signed webhooks reach a receiver on loopback.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer
from PIL import Image, ImageFilter

from app.connectors.sinks import ConnectClient, apply_connectors
from app.connectors.webhook import verify
from app.contracts import document_input
from app.devstack.errors import DevStackError
from app.devstack.llm_sim import LLMSimulator
from app.devstack.postgres import query
from app.devstack.scenarios.invoice import invoice_rules
from app.devstack.service import ServiceInfo
from app.project import KafkaConnectSpec, load_project
from app.project.project import Project
from app.streams import ResultWatcher, TopicNames
from tests.integration import conftest as services_fixtures
from tests.integration.connectors.conftest import ROOT, Receiver, child_env, ferry_command, free_port
from tests.integration.kafka_helpers import produce, unique, wait_for

pytestmark = pytest.mark.integration

dev_stack = services_fixtures.dev_stack
kafka_bootstrap = services_fixtures.kafka_bootstrap
postgres = services_fixtures.postgres
kafka_connect = services_fixtures.kafka_connect

READY_SECRET, REVIEW_SECRET = "whsec_ready", "whsec_review"
SAMPLES = ROOT / "samples" / "invoices"


@pytest.fixture
def s3_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    ready, review = Receiver(free_port()), Receiver(free_port())
    await ready.start()
    await review.start()
    yield ready, review
    await ready.stop()
    await review.stop()


def _blurred(png: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).filter(ImageFilter.GaussianBlur(4)).save(out, "PNG")
    return out.getvalue()


def _example_copy(root: Path, events_topic: str) -> Project:
    """The example project as it is, with loopback allowed for the test's webhook receivers
    and the upload notifications on a topic of this test's own."""
    for part in ("agents", "tools", "schemas", "connectors", "topics"):
        if (ROOT / part).exists():
            shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((ROOT / "ferry.yaml").read_text()) or {}
    config.setdefault("webhooks", {})["allow_private"] = ["127.0.0.1/32"]
    (root / "ferry.yaml").write_text(yaml.safe_dump(config))
    uploads = root / "connectors" / "invoice-uploads.yaml"
    trigger = yaml.safe_load(uploads.read_text())
    uploads.write_text(yaml.safe_dump({**trigger, "events_topic": events_topic}))
    return load_project(root)


def _created(key: str) -> bytes:
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "invoices"}, "object": {"key": key}}}
    return json.dumps({"Records": [record]}).encode()


def _rows(port: int, sql: str) -> list[list[str]]:
    try:
        return query(port, sql)
    except DevStackError:  # the table appears with the sink's first batch
        return []


async def test_uploaded_invoices_are_extracted_scored_stored_and_announced(
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres: ServiceInfo,
    kafka_connect: ServiceInfo,
    s3_url: str,
    receivers: tuple[Receiver, Receiver],
) -> None:
    ready, review = receivers
    events_topic = unique("s3.invoice-uploads")
    project = _example_copy(tmp_path / "project", events_topic)
    names = TopicNames(unique("up") + ".")
    documents = {
        "acme-a-7781.pdf": (SAMPLES / "acme-a-7781.pdf").read_bytes(),
        "blue-harbor-bhc-0042.png": (SAMPLES / "blue-harbor-bhc-0042.png").read_bytes(),
        "blurred-kpw-1193.png": _blurred((SAMPLES / "kestrel-kpw-1193.png").read_bytes()),
    }
    s3 = boto3.client(
        "s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    s3.create_bucket(Bucket="invoices")

    # Kafka Connect writes the invoices into a table of this test's own.
    pg = urlparse(postgres.address)
    pg_port = int(pg.port or 5432)
    table = unique("invoices").replace("-", "_")
    spec = project.connectors["ferry-invoices-postgres"]
    assert isinstance(spec, KafkaConnectSpec)
    renamed = spec.model_copy(
        update={"name": unique(spec.name), "config": dict(spec.config) | {"collection.name.format": table}}
    )
    environ = {
        "FERRY_SINK_JDBC_URL": f"jdbc:postgresql://{pg.hostname}:{pg_port}{pg.path}",
        "FERRY_SINK_DB_USER": pg.username or "postgres",
        "FERRY_SINK_DB_PASSWORD": "unused-with-trust-auth",
    }
    client = ConnectClient(kafka_connect.address)

    rules = [rule for name, data in documents.items() for rule in invoice_rules(project, document_input(name, data))]
    async with LLMSimulator(rules, latency_ms=0) as sim:
        env = {
            **child_env(),
            "FERRY_LLM_BASE_URL": sim.base_url,
            "S3_ENDPOINT_URL": s3_url,
            "AWS_ACCESS_KEY_ID": "t",
            "AWS_SECRET_ACCESS_KEY": "t",
            "AWS_DEFAULT_REGION": "us-east-1",
            "FERRY_INVOICE_WEBHOOK_URL": ready.url,
            "FERRY_INVOICE_WEBHOOK_SECRET": READY_SECRET,
            "FERRY_REVIEW_WEBHOOK_URL": review.url,
            "FERRY_REVIEW_WEBHOOK_SECRET": REVIEW_SECRET,
            "FERRY_HOME": str(tmp_path / "home"),
        }
        worker = subprocess.Popen(  # noqa: ASYNC220 - the worker as a user starts it
            ferry_command("worker", "--project", str(tmp_path / "project"), "--broker", kafka_bootstrap,
                          "--topic-prefix", names.prefix, "--app-id", unique("ferry-up"), "--no-metrics",
                          "--replication", "1"),
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert worker.stderr is not None
            started: list[str] = []
            async with asyncio.timeout(180):
                while not any("consuming" in line for line in started):
                    line = await asyncio.to_thread(worker.stderr.readline)
                    assert line, "the worker exited before consuming: " + "".join(started)
                    started.append(line)
            asyncio.get_running_loop().run_in_executor(None, worker.stderr.read)  # keep its pipe drained
            [state] = await asyncio.to_thread(apply_connectors, client, [renamed], names, environ=environ, wait_s=60)
            assert state.ok, state.line()

            async with ResultWatcher(kafka_bootstrap, names) as watcher:
                for name, data in documents.items():
                    s3.put_object(Bucket="invoices", Key=f"incoming/{name}", Body=data)
                    await produce(kafka_bootstrap, events_topic, [(None, _created(f"incoming/{name}"))])
                await produce(kafka_bootstrap, events_topic, [(None, _created("incoming/acme-a-7781.pdf"))])  # again

                async def every_row() -> bool:
                    return len(_rows(pg_port, f"select record_key from {table}")) == 3

                await wait_for(every_row, 300, interval=0.5, what=f"3 invoices in {table}")
                await wait_for(lambda: len(ready.accepted()) == 2 and len(review.accepted()) == 1, 120,
                               what="the ready and review webhooks")  # fmt: skip
                async with asyncio.timeout(60):
                    while len([r for r in watcher.results.values() if r.agent == "invoice-pipeline"]) < 3:
                        await watcher.poll()
                pipelines = [r for r in watcher.results.values() if r.agent == "invoice-pipeline"]
        finally:
            worker.send_signal(signal.SIGTERM)
            await asyncio.to_thread(worker.wait, 60)
            client.call("DELETE", f"/connectors/{renamed.name}")

    assert len(pipelines) == 3  # one run per upload: the repeated notification is the same run
    assert {r.trigger.metadata["key"] for r in pipelines} == {f"incoming/{n}" for n in documents}
    rows = _rows(
        pg_port,
        f"select invoice_number, needs_review, confidence, field_confidences::text, unsure_fields::text from {table}",
    )
    by_review = {row[1]: row for row in rows}
    assert sorted(row[1] for row in rows) == ["f", "f", "t"]
    for number, _, confidence, fields, _ in rows:
        per_field: dict[str, Any] = json.loads(fields)
        assert per_field and all(0 <= value <= 1 for value in per_field.values()), (number, per_field)
        assert 0 <= float(confidence) <= 1
    unsure = json.loads(by_review["t"][4])
    assert unsure, "the blurred scan names the fields it is unsure of"
    for receiver, secret in ((ready, READY_SECRET), (review, REVIEW_SECRET)):
        for got in receiver.accepted():
            assert got.signature is not None and verify(secret, got.timestamp, got.body, got.signature)
    announced = {json.loads(got.body)["output"]["invoice_number"] for got in ready.accepted()}
    assert announced == {"A-7781", "BHC-0042"}
    assert json.loads(review.accepted()[0].body)["output"]["needs_review"] is True
