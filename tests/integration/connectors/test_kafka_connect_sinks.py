"""Run results reach PostgreSQL through Ferry's sink feeder, Kafka Connect and the Debezium JDBC sink.

The example project's connectors (connectors/*.yaml) are applied as written, only
renamed (connector and table) so the test never meets another run's rows: every run,
every completed invoice with its confidences, and the review queue (the invoices that
need review, routed by `when:`). Run without FERRY_BROKER: the `kafka_connect`
fixture's Connect talks to the dev stack's own Kafka.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
from PIL import Image, ImageFilter

from app.cli.demo import invoice_samples
from app.connectors.sinks import ConnectClient, SinkFeeder, apply_connectors, feeds_of
from app.contracts import RunRequest, RunResult, RunStatus, document_input
from app.contracts.errors import ErrorCategory
from app.contracts.runs import PipelineContext, RunError, Usage
from app.devstack.errors import DevStackError
from app.devstack.llm_sim import LLMSimulator
from app.devstack.postgres import query
from app.devstack.scenarios.invoice import invoice_rules
from app.devstack.service import ServiceInfo
from app.project import KafkaConnectSpec, load_project
from app.project.project import Project
from app.streams import Submitter, TopicNames, apply_topics
from app.streams.topic_plan import plan_topic, plan_topics
from tests.integration.connectors.conftest import ROOT, produce_results
from tests.integration.kafka_helpers import unique, wait_for
from tests.integration.streams.conftest import WorkerFactory

pytestmark = pytest.mark.integration

RUNS = 12


@pytest.fixture
def example() -> Project:
    return load_project(ROOT)


@pytest.fixture
async def feeder(kafka_bootstrap: str, example: Project, prefix: str) -> AsyncIterator[SinkFeeder]:
    names = TopicNames(prefix)
    feeds = feeds_of(example, names)
    shared = [t for t in plan_topics(example, names, (), 1) if t.name == names.results]
    await apply_topics(kafka_bootstrap, shared + [plan_topic(example, names, f.topic, 1) for f in feeds])
    made = SinkFeeder(kafka_bootstrap, names, feeds, group_id=unique("ferry-sinks"))
    await made.start()
    yield made
    await made.stop()


def _renamed(spec: KafkaConnectSpec, table: str) -> KafkaConnectSpec:
    config = dict(spec.config) | {"collection.name.format": table}
    return spec.model_copy(update={"name": unique(spec.name), "config": config})


def _result(index: int, **fields: object) -> RunResult:
    now = datetime.now(UTC)
    base: dict[str, object] = {
        "run_id": f"run-{index:03d}",
        "agent": "invoice-extractor",
        "status": RunStatus.COMPLETED,
        "output": {"n": index},
        "usage": Usage(prompt_tokens=10, completion_tokens=index, total_tokens=10 + index, cost_usd=0.001, llm_calls=1),
        "started_at": now,
        "ended_at": now,
        "duration_ms": 12.5,
        "tenant": "acme",
    }
    return RunResult.model_validate(base | fields)


def _invoice(number: str, total: object) -> dict[str, object]:
    return {
        "record_type": "invoice",
        "record_key": f"key-{number}",
        "vendor": "ACME GmbH",
        "invoice_number": number,
        "invoice_date": "2026-11-30",
        "currency": "EUR",
        "subtotal": "100.00",
        "tax": "19.00",
        "total": total,
        "line_items": [{"description": "Widget", "quantity": "2", "unit_price": "50.00", "amount": "100.00"}],
        "line_item_count": 1,
        "validation_status": "valid",
        "needs_review": False,
        "confidence": 0.97,
        "field_confidences": {"total": 0.97, "subtotal": 1.0},
        "unsure_fields": [],
        "review_reasons": [],
        "run_id": "stage-run",
    }


def _doubtful_invoice(number: str) -> dict[str, object]:
    return _invoice(number, "119.00") | {
        "needs_review": True,
        "confidence": 0.61,
        "field_confidences": {"total": 0.31, "subtotal": 0.9},
        "unsure_fields": ["total"],
        "review_reasons": ["unsure: total"],
    }


def _rows(port: int, sql: str) -> list[list[str]]:
    try:
        return query(port, sql)
    except DevStackError:  # the table appears with the sink's first batch
        return []


async def test_every_run_result_and_every_invoice_lands_in_postgres(
    kafka_bootstrap: str,
    postgres: ServiceInfo,
    kafka_connect: ServiceInfo,
    example: Project,
    feeder: SinkFeeder,
    prefix: str,
) -> None:
    pg = urlparse(postgres.address)
    port = int(pg.port or 5432)
    runs_table, invoices_table = unique("ferry_runs").replace("-", "_"), unique("invoices").replace("-", "_")
    reviews_table = unique("invoice_reviews").replace("-", "_")
    specs = {name: spec for name, spec in example.connectors.items() if isinstance(spec, KafkaConnectSpec)}
    applied = [
        _renamed(specs["ferry-runs-postgres"], runs_table),
        _renamed(specs["ferry-invoices-postgres"], invoices_table),
        _renamed(specs["ferry-invoice-reviews-postgres"], reviews_table),
    ]
    environ = {
        "FERRY_SINK_JDBC_URL": f"jdbc:postgresql://{pg.hostname}:{port}{pg.path}",
        "FERRY_SINK_DB_USER": pg.username or "postgres",
        "FERRY_SINK_DB_PASSWORD": "unused-with-trust-auth",
    }
    client = ConnectClient(kafka_connect.address)
    states = await asyncio.to_thread(apply_connectors, client, applied, TopicNames(prefix), environ=environ, wait_s=60)
    assert all(state.ok for state in states), [state.line() for state in states]
    # Applying again only updates: still one connector each, still running.
    again = await asyncio.to_thread(apply_connectors, client, applied, TopicNames(prefix), environ=environ, wait_s=60)
    assert [state.state for state in again] == ["RUNNING", "RUNNING", "RUNNING"]

    results = [_result(i) for i in range(RUNS)]
    failed = _result(
        RUNS,
        status=RunStatus.FAILED,
        output=None,
        error=RunError(category=ErrorCategory.TOOL_ERROR, message="parse_pdf: not a PDF"),
    )
    pipeline_ctx = PipelineContext(pipeline="invoice-pipeline", stage=2, root_run_id="pipe-1")
    invoices = [
        _result(
            100, run_id="pipe-1", agent="invoice-pipeline", output=_invoice("INV-1", "119.00"), pipeline=pipeline_ctx
        ),
        _result(101, run_id="pipe-2", agent="invoice-pipeline", output=_invoice("INV-2", "unclear")),
        _result(102, run_id="pipe-3", agent="invoice-pipeline", status=RunStatus.FAILED, output=_invoice("INV-3", "1")),
        _result(103, run_id="pipe-4", agent="invoice-pipeline", output=_doubtful_invoice("INV-4")),
    ]
    # run-000 twice: the later result wins and no row is doubled.
    rerun = _result(0, status=RunStatus.FAILED, output=None)
    await produce_results(kafka_bootstrap, TopicNames(prefix), [*results, failed, *invoices, rerun])

    every = RUNS + 1 + len(invoices)

    async def runs_arrived() -> bool:
        rows = _rows(port, f"select count(*) from {runs_table} where run_id = 'run-000' and status = 'failed'")
        count = _rows(port, f"select count(*) from {runs_table}")
        return rows == [["1"]] and count == [[str(every)]]

    await wait_for(runs_arrived, 180, interval=0.5, what=f"{every} rows in {runs_table}")
    row = _rows(
        port,
        f"select agent, status, tenant, total_tokens, cost_usd, output::text, started_at is not null"
        f" from {runs_table} where run_id = 'run-007'",
    )
    assert row == [["invoice-extractor", "completed", "acme", "17", "0.001", '{"n": 7}', "t"]]
    assert _rows(port, f"select error_category, error_message from {runs_table} where run_id = 'run-{RUNS:03d}'") == [
        ["tool_error", "parse_pdf: not a PDF"]
    ]
    assert _rows(port, f"select pipeline, root_run_id from {runs_table} where run_id = 'pipe-1'") == [
        ["invoice-pipeline", "pipe-1"]
    ]

    async def invoices_arrived() -> bool:
        return len(_rows(port, f"select record_key from {invoices_table}")) == 3

    await wait_for(invoices_arrived, 120, interval=0.5, what=f"3 rows in {invoices_table}")
    rows = _rows(
        port,
        f"select invoice_number, vendor, invoice_date, currency, subtotal, tax, coalesce(total::text, 'null'),"
        f" line_item_count, needs_review, run_id, line_items::text, confidence, field_confidences::text,"
        f" unsure_fields::text, review_reasons::text from {invoices_table} order by invoice_number",
    )
    assert [r[:10] for r in rows] == [
        ["INV-1", "ACME GmbH", "2026-11-30", "EUR", "100", "19", "119", "1", "f", "pipe-1"],
        ["INV-2", "ACME GmbH", "2026-11-30", "EUR", "100", "19", "null", "1", "f", "pipe-2"],  # "unclear" → null
        ["INV-4", "ACME GmbH", "2026-11-30", "EUR", "100", "19", "119", "1", "t", "pipe-4"],
    ]
    assert json.loads(rows[0][10]) == _invoice("INV-1", "119.00")["line_items"]
    assert rows[0][11] == "0.97" and json.loads(rows[0][12]) == {"total": 0.97, "subtotal": 1.0}
    assert json.loads(rows[2][13]) == ["total"] and json.loads(rows[2][14]) == ["unsure: total"]

    # The review queue: only the invoice that needs review, with what a reviewer needs.
    async def review_arrived() -> bool:
        return len(_rows(port, f"select record_key from {reviews_table}")) == 1

    await wait_for(review_arrived, 120, interval=0.5, what=f"1 row in {reviews_table}")
    review = _rows(
        port,
        f"select invoice_number, confidence, unsure_fields::text, review_reasons::text, invoice::text, run_id"
        f" from {reviews_table}",
    )
    assert [r[:2] + r[5:] for r in review] == [["INV-4", "0.61", "pipe-4"]]
    assert json.loads(review[0][2]) == ["total"] and json.loads(review[0][3]) == ["unsure: total"]
    assert json.loads(review[0][4]) == _doubtful_invoice("INV-4")
    assert feeder.stats.undecodable == 0
    for spec in applied:
        client.call("DELETE", f"/connectors/{spec.name}")


async def test_the_invoice_pipeline_run_on_the_samples_fills_the_invoices_table(
    kafka_bootstrap: str,
    postgres: ServiceInfo,
    kafka_connect: ServiceInfo,
    example: Project,
    feeder: SinkFeeder,
    make_worker: WorkerFactory,
    prefix: str,
) -> None:
    pg = urlparse(postgres.address)
    port = int(pg.port or 5432)
    table, reviews = unique("invoices").replace("-", "_"), unique("invoice_reviews").replace("-", "_")
    spec, review_spec = (
        example.connectors["ferry-invoices-postgres"],
        example.connectors["ferry-invoice-reviews-postgres"],
    )
    assert isinstance(spec, KafkaConnectSpec) and isinstance(review_spec, KafkaConnectSpec)
    environ = {
        "FERRY_SINK_JDBC_URL": f"jdbc:postgresql://{pg.hostname}:{port}{pg.path}",
        "FERRY_SINK_DB_USER": pg.username or "postgres",
        "FERRY_SINK_DB_PASSWORD": "unused-with-trust-auth",
    }
    client = ConnectClient(kafka_connect.address)
    applied = [_renamed(spec, table), _renamed(review_spec, reviews)]
    states = await asyncio.to_thread(apply_connectors, client, applied, TopicNames(prefix), environ=environ)
    assert all(state.ok for state in states), [state.line() for state in states]

    samples = invoice_samples(ROOT / "samples" / "invoices")
    # And a sample scan blurred past reading: the pipeline completes it, unsure, for review.
    clean = ROOT / "samples" / "invoices" / "kestrel-kpw-1193.png"
    blurred = io.BytesIO()
    Image.open(clean).filter(ImageFilter.GaussianBlur(4)).save(blurred, "PNG")
    blurred_payload = document_input("kestrel-blurred.png", blurred.getvalue())
    payloads = [sample.payload for sample in samples] + [blurred_payload]
    rules = [rule for payload in payloads for rule in invoice_rules(example, payload)]
    async with LLMSimulator(rules, latency_ms=0) as sim:
        worker = make_worker(example, sim.base_url, agents=("invoice-pipeline",))
        await worker.start()
        async with Submitter(kafka_bootstrap, example, TopicNames(prefix)) as submitter:
            for payload in payloads:
                await submitter.submit(RunRequest.new("invoice-pipeline", payload, tenant="acct"))

        async def every_invoice() -> bool:
            return len(_rows(port, f"select record_key from {table}")) == len(payloads)

        await wait_for(every_invoice, 240, interval=0.5, what=f"{len(payloads)} rows in {table}")
        await wait_for(lambda: _rows(port, f"select count(*) from {reviews}") == [["1"]], 120, interval=0.5)
    rows = _rows(
        port,
        f"select coalesce(invoice_number, 'none'), vendor, total, tenant, line_item_count > 0, needs_review,"
        f" confidence, field_confidences::text, unsure_fields::text from {table}",
    )
    flagged = [row for row in rows if row[5] == "t"]
    got = {row[0]: row[1:] for row in rows if row[5] == "f"}
    for sample in samples:
        expected = sample.expected
        vendor, total, tenant, has_items, _, confidence, fields, unsure = got[expected["invoice_number"]]
        assert vendor == expected["vendor"] and tenant == "acct" and has_items == "t"
        assert float(total) == pytest.approx(expected["total"])
        assert float(confidence) > 0.8 and json.loads(unsure) == []
        assert json.loads(fields)["total"] > 0.8  # per-field confidences, from the document
    # The blurred scan, and only it: flagged, its unsure fields named, queued for review.
    [[_, vendor, _, _, _, _, confidence, fields, unsure]] = flagged
    assert float(confidence) < 0.8
    assert json.loads(unsure) and set(json.loads(unsure)) <= set(json.loads(fields))
    [[queued, queued_unsure]] = _rows(port, f"select vendor, unsure_fields::text from {reviews}")
    assert queued == vendor and json.loads(queued_unsure) == json.loads(unsure)
    for made in applied:
        client.call("DELETE", f"/connectors/{made.name}")


async def test_apply_reports_a_connector_that_fails_and_one_connect_refuses(
    kafka_connect: ServiceInfo, postgres: ServiceInfo, prefix: str
) -> None:
    unreachable_db = KafkaConnectSpec.model_validate(
        {
            "name": unique("no-db"),
            "config": {
                "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
                "topics": unique("nothing"),
                "connection.url": "jdbc:postgresql://127.0.0.1:1/none",
                "connection.username": "${NOBODY_USER}",
            },
        }
    )
    unknown_class = KafkaConnectSpec.model_validate(
        {"name": unique("no-class"), "config": {"connector.class": "com.example.NoSuchConnector", "topics": "x"}}
    )
    client = ConnectClient(kafka_connect.address)
    states = await asyncio.to_thread(
        apply_connectors,
        client,
        [unreachable_db, unknown_class],
        TopicNames(prefix),
        environ={"NOBODY_USER": "u"},
        wait_s=180,  # the sink's task gives up on the database after ~30 s of Hibernate retries
    )
    failed, refused = states
    assert failed.state == "FAILED" and not failed.ok, failed
    assert failed.reason and "\n" not in failed.reason  # the trace's first line
    assert refused.state == "REJECTED" and "NoSuchConnector" in refused.reason, refused
    client.call("DELETE", f"/connectors/{unreachable_db.name}")
