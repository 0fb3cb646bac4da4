"""With OTEL_EXPORTER_OTLP_ENDPOINT set, a worker's spans reach an OpenTelemetry collector
(a local OTLP/HTTP receiver here): the invoice pipeline's three stages as one trace, with
the GenAI semantic-convention attribute names, flushed when the worker stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli.demo import invoice_samples
from app.contracts import RunRequest, RunStatus
from app.contracts.trace_context import TraceContext
from app.devstack.llm_sim import LLMSimulator
from app.devstack.scenarios.invoice import invoice_rules
from app.engine import EngineSettings
from app.project import load_project
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, Worker
from app.streams.pipeline import stage_run_id
from tests.integration.kafka_helpers import unique
from tests.unit.observability.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
STAGES = ["invoice-extractor", "invoice-validator", "invoice-storer"]


async def test_the_collector_receives_a_pipeline_as_one_trace_with_genai_names(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # batches every 0.2 s, not 5 s
    project = load_project(ROOT)
    sample = invoice_samples(ROOT / "samples" / "invoices")[0]
    names = TopicNames(unique("t") + ".")
    request = RunRequest.new("invoice-pipeline", sample.payload, tenant="acct")
    submitted = TraceContext("5b8aa5a2d2c872e8321cf37308d69df2", "051581bf3cb55c13")
    async with OtlpReceiver() as collector, LLMSimulator(invoice_rules(project, sample.payload), latency_ms=0) as sim:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
        settings = StreamSettings(
            bootstrap=kafka_bootstrap,
            app_id=unique("ferry-otlp"),
            topic_prefix=names.prefix,
            agents=("invoice-pipeline",),
        )
        worker = Worker(project, settings, engine_settings=EngineSettings(llm_base_url=sim.base_url))
        try:
            await worker.start()
            async with (
                ResultWatcher(kafka_bootstrap, names) as watcher,
                Submitter(kafka_bootstrap, project, names) as submitter,
            ):
                await submitter.submit(request, trace=submitted)
                results = await watcher.wait_for([request.run_id], timeout=120)
            assert results[request.run_id].status == RunStatus.COMPLETED
            stage_ids = [stage_run_id(request.run_id, i) for i in range(3)]

            def stage_runs_arrived(spans: list[ReceivedSpan]) -> bool:
                return {
                    s.attributes.get("ferry.run_id") for s in spans if s.attributes.get("ferry.kind") == "run"
                } >= set(stage_ids)

            await collector.wait_for(stage_runs_arrived, timeout=30)  # batches go out while the worker runs
        finally:
            await worker.stop()  # and the last one when it stops
    spans = [s for s in collector.spans if s.attributes.get("ferry.run_id") in stage_ids]
    assert {s.trace_id for s in spans} == {submitted.trace_id}  # one trace, the submitter's
    assert {s.resource["service.name"] for s in spans} == {"ferry-worker"}
    runs = [
        next(s for s in spans if s.attributes["ferry.run_id"] == i and s.attributes["ferry.kind"] == "run")
        for i in stage_ids
    ]
    assert [r.attributes["gen_ai.agent.name"] for r in runs] == STAGES
    assert [r.parent_span_id for r in runs] == [submitted.span_id, runs[0].span_id, runs[1].span_id]
    assert all(r.attributes["gen_ai.operation.name"] == "invoke_agent" for r in runs)
    calls = [s for s in spans if s.attributes["ferry.kind"] == "llm_call"]
    assert len(calls) >= 2  # the extractor's and the validator's
    for call in calls:
        assert call.attributes["gen_ai.operation.name"] == "chat"
        assert call.attributes["gen_ai.provider.name"] == call.attributes["gen_ai.system"] == "gcp.gemini"
        assert call.attributes["gen_ai.request.model"] == call.attributes["gen_ai.response.model"] == "gemini-2.5-flash"
        assert call.attributes["gen_ai.usage.input_tokens"] == call.attributes["llm.prompt_tokens"] > 0
        assert call.attributes["gen_ai.usage.output_tokens"] == call.attributes["llm.completion_tokens"] > 0
    tools = {s.attributes["gen_ai.tool.name"] for s in spans if s.attributes["ferry.kind"] == "tool_call"}
    assert {"parse_pdf", "verify_totals", "to_invoice_record"} <= tools
    total_in = sum(r.attributes["gen_ai.usage.input_tokens"] for r in runs)
    assert total_in == results[request.run_id].usage.prompt_tokens  # the stages' usage adds up to the pipeline's
