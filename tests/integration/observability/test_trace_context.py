"""One trace per request: the invoice pipeline run by two workers of one app id (partitions
split between them) is one trace on `runs.traces`, every stage's run span the child of
the previous stage's, and a submitted `traceparent` is the trace the pipeline joins.

The example project runs each agent one at a time (one partition per agent), so one
worker would hold every stage; the test's copy of it lets each stage run four at a time,
which gives the two workers two partitions each to split."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import murmur2

from app.cli.demo import invoice_samples
from app.contracts import RunRequest, RunResult, RunStatus, SpanEvent, SpanKind
from app.contracts.trace_context import TraceContext
from app.devstack.llm_sim import LLMSimulator
from app.devstack.scenarios.invoice import invoice_rules
from app.engine import EngineSettings
from app.project import load_project
from app.project.project import Project
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, Worker
from app.streams.pipeline import stage_run_id
from app.streams.topic_plan import agent_partitions
from tests.integration.kafka_helpers import unique, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
STAGES = ["invoice-extractor", "invoice-validator", "invoice-storer"]
SUBMITTER = TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", tracestate="ferrytest=1")


class _Recording:
    """The worker's runner, noting which run ids this worker ran."""

    def __init__(self, inner: Any, ran: set[str]) -> None:
        self._inner = inner
        self._ran = ran

    async def run(self, request: RunRequest, **kwargs: Any) -> RunResult:
        self._ran.add(request.run_id)
        result: RunResult = await self._inner.run(request, **kwargs)
        return result


@pytest.fixture
async def two_workers(kafka_bootstrap: str) -> AsyncIterator[Callable[..., list[Worker]]]:
    made: list[Worker] = []

    def build(project: Project, names: TopicNames, base_url: str) -> list[Worker]:
        app_id = unique("ferry-trace")
        for _ in range(2):
            settings = StreamSettings(
                bootstrap=kafka_bootstrap, app_id=app_id, topic_prefix=names.prefix, agents=("invoice-pipeline",)
            )
            made.append(Worker(project, settings, engine_settings=EngineSettings(llm_base_url=base_url)))
        return made

    yield build
    for worker in made:
        with contextlib.suppress(Exception):
            await worker.stop()


def _invoice_project(root: Path) -> Project:
    """The example project with four concurrent runs per stage (so both workers hold some of
    each stage's partitions: a cap below the workers puts them all on one)."""
    for folder in ("agents", "tools", "schemas", "topics"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "ferry.yaml", root / "ferry.yaml")
    for agent in STAGES:
        path = root / "agents" / f"{agent}.yaml"
        path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "max_concurrent_runs": 4}))
    return load_project(root)


def _partition(key: str, partitions: int) -> int:
    """Where the producer puts a record keyed `key` (Kafka's default murmur2 partitioner)."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def _owner(workers: list[Worker], agent: str, partition: int) -> int:
    return next(i for i, w in enumerate(workers) if w.processor and partition in w.processor.assigned(agent))


async def test_a_pipeline_across_two_workers_is_one_trace(
    kafka_bootstrap: str, two_workers: Any, tmp_path: Path
) -> None:
    project = _invoice_project(tmp_path)
    names = TopicNames(unique("t") + ".")
    samples = invoice_samples(ROOT / "samples" / "invoices")[:2]
    rules = [rule for sample in samples for rule in invoice_rules(project, sample.payload)]
    async with LLMSimulator(rules, latency_ms=0) as sim:
        workers = two_workers(project, names, sim.base_url)
        for worker in workers:
            await worker.start()
        sizes = {agent: agent_partitions(project, names, agent) for agent in STAGES}
        assert min(sizes.values()) >= 2  # a partition for each worker

        def settled() -> bool:
            for agent, size in sizes.items():
                held = [w.processor.assigned(agent) if w.processor else frozenset() for w in workers]
                if not all(held) or sorted(p for h in held for p in h) != list(range(size)):
                    return False
            return True

        await wait_for(settled, 90, what="the two workers to split every stage's partitions")
        ran: list[set[str]] = [set(), set()]
        for worker, own in zip(workers, ran, strict=True):
            assert worker.processor is not None
            worker.processor.runner = _Recording(worker.processor.runner, own)

        # Requests whose first two stages land on different workers (stage keys are the stage
        # run ids): whichever way the partitions were split, each pipeline crosses workers.
        requests: list[RunRequest] = []
        for sample in samples:
            for attempt in range(1000):
                request = RunRequest.new("invoice-pipeline", sample.payload, idempotency_key=f"{sample.file}-{attempt}")
                first = _owner(workers, STAGES[0], _partition(stage_run_id(request.run_id, 0), sizes[STAGES[0]]))
                second = _owner(workers, STAGES[1], _partition(stage_run_id(request.run_id, 1), sizes[STAGES[1]]))
                if first != second:
                    requests.append(request)
                    break
        traced, untraced = requests

        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            await submitter.submit(traced, trace=SUBMITTER)
            await submitter.submit(untraced)  # no header: the first stage starts the trace
            roots = await watcher.wait_for([r.run_id for r in requests], timeout=180)
        assert {r.status for r in roots.values()} == {RunStatus.COMPLETED}, roots
        stage_ids = {r.run_id: [stage_run_id(r.run_id, i) for i in range(3)] for r in requests}
        spans = await _run_spans_of(kafka_bootstrap, names, [s for ids in stage_ids.values() for s in ids])

    for request in requests:
        ids = stage_ids[request.run_id]
        assert {i for i, own in enumerate(ran) if own & set(ids[:2])} == {0, 1}  # two workers ran this pipeline
        events = [e for e in spans if e.run_id in ids]
        trace_ids = {e.trace_id for e in events}
        assert len(trace_ids) == 1, f"stages of {request.run_id} in traces {trace_ids}"
        runs = [next(e for e in events if e.run_id == run_id and e.kind is SpanKind.RUN) for run_id in ids]
        if request is traced:
            assert trace_ids == {SUBMITTER.trace_id}
            assert runs[0].parent_span_id == SUBMITTER.span_id
        else:
            assert trace_ids != {SUBMITTER.trace_id} and runs[0].parent_span_id is None
        # The chain: each stage's run span is the child of the previous stage's run span.
        assert runs[1].parent_span_id == runs[0].span_id
        assert runs[2].parent_span_id == runs[1].span_id
        for run_id, run in zip(ids, runs, strict=True):  # and each stage's own steps hang under its run span
            own = {e.span_id for e in events if e.run_id == run_id}
            steps = [e for e in events if e.run_id == run_id and e is not run]
            assert steps and all(e.parent_span_id in own for e in steps)
        kinds = {e.kind for e in events}
        assert {SpanKind.LLM_CALL, SpanKind.TOOL_CALL} <= kinds


async def _run_spans_of(bootstrap: str, names: TopicNames, run_ids: list[str], timeout: float = 60) -> list[SpanEvent]:
    """Every span of `run_ids` on runs.traces, read until each of them has its run span."""
    consumer = AIOKafkaConsumer(
        names.traces, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
        group_id=None, fetch_max_wait_ms=50,
    )  # fmt: skip
    await consumer.start()
    events: list[SpanEvent] = []
    wanted = set(run_ids)

    async def complete() -> bool:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for record in records:
                event = SpanEvent.model_validate_json(record.value or b"")
                if event.run_id in wanted:
                    events.append(event)
        return {e.run_id for e in events if e.kind is SpanKind.RUN} == wanted

    try:
        await wait_for(complete, timeout, interval=0, what="every stage's run span on runs.traces")
    finally:
        await consumer.stop()
    return events
