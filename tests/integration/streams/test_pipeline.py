"""The three-stage invoice pipeline over Kafka, stage by stage, on the sample invoices."""

from __future__ import annotations

from pathlib import Path

from app.cli.demo import invoice_samples
from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.devstack.scenarios.invoice import invoice_rules
from app.project import load_project
from app.streams import ResultWatcher, Submitter, TopicNames
from app.streams.pipeline import stage_run_id
from tests.integration.streams.conftest import WorkerFactory

ROOT = Path(__file__).resolve().parents[3]


async def test_invoice_pipeline_processes_the_samples_end_to_end(
    kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = load_project(ROOT)
    samples = invoice_samples(ROOT / "samples" / "invoices")
    rules = [rule for sample in samples for rule in invoice_rules(project, sample.payload)]
    async with LLMSimulator(rules, latency_ms=0) as sim:
        worker = make_worker(project, sim.base_url, agents=("invoice-pipeline",))
        await worker.start()
        requests = [RunRequest.new("invoice-pipeline", s.payload, tenant="acct") for s in samples]
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in requests:
                await submitter.submit(request)
            roots = await watcher.wait_for([r.run_id for r in requests], timeout=150)
            stage_ids = [stage_run_id(r.run_id, i) for r in requests for i in range(3)]
            stages = await watcher.wait_for(stage_ids, timeout=10)
            await watcher.poll(timeout_ms=500)

    assert len(roots) == len(samples)
    assert watcher.duplicates == 0  # each pipeline result emitted once
    for sample, request in zip(samples, requests, strict=True):
        result = roots[request.run_id]
        assert result.status == RunStatus.COMPLETED, (sample.file, result.error)
        assert result.agent == "invoice-pipeline"
        record = result.output
        assert record["vendor"] == sample.expected["vendor"]
        assert record["invoice_number"] == sample.expected["invoice_number"]
        assert record["total"] == f"{sample.expected['total']:.2f}"
        assert result.pipeline is not None and result.pipeline.root_run_id == request.run_id
        # Every stage is its own run, chained by parent ids, and its usage adds up into the pipeline's.
        chain = [stages[stage_run_id(request.run_id, i)] for i in range(3)]
        assert [s.agent for s in chain] == ["invoice-extractor", "invoice-validator", "invoice-storer"]
        assert [s.pipeline.stage for s in chain] == [0, 1, 2]  # type: ignore[union-attr]
        assert chain[0].pipeline.parent_run_id == request.run_id  # type: ignore[union-attr]
        assert chain[2].pipeline.parent_run_id == chain[1].run_id  # type: ignore[union-attr]
        assert chain[0].output["invoice_number"] == sample.expected["invoice_number"]
        assert result.usage.total_tokens == sum(s.usage.total_tokens for s in chain) > 0
        assert result.pipeline.parent_run_id == chain[2].run_id


async def test_a_failing_stage_ends_the_pipeline_with_its_error(
    kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = load_project(ROOT)
    async with LLMSimulator([], latency_ms=0) as sim:  # the default text reply fails the output schema
        worker = make_worker(project, sim.base_url, agents=("invoice-pipeline",))
        await worker.start()
        request = RunRequest.new("invoice-pipeline", {"message": "no document at all"})
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            await submitter.submit(request)
            results = await watcher.wait_for([request.run_id, stage_run_id(request.run_id, 0)], timeout=60)
            await watcher.poll(timeout_ms=500)

    pipeline, stage = results[request.run_id], results[stage_run_id(request.run_id, 0)]
    assert stage.status == RunStatus.FAILED
    assert pipeline.status == RunStatus.FAILED
    assert pipeline.error == stage.error
    assert stage_run_id(request.run_id, 1) not in watcher.results  # no later stage ran
