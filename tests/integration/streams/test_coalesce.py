"""`on_conflict: coalesce`: while a key's run executes, only its newest waiting run is kept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from app.contracts import RunRequest, RunResult, RunStatus, SpanEvent
from app.devstack.llm_sim import LLMSimulator
from app.engine import Engine, EngineSettings
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project


class _HoldFirst:
    """The engine, except that the run whose message is "first" waits at its start until
    `release` is set: the runs after it are surely read while it executes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def run(
        self, request: RunRequest, *, on_span: Callable[[SpanEvent], None] | None = None, trace_context: Any = None
    ) -> RunResult:
        if request.input.get("message") == "first":
            self.holding.set()
            async with asyncio.timeout(60):
                await self.release.wait()
        return await self.engine.run(request, on_span=on_span, trace_context=trace_context)


async def test_coalesce_replaces_the_waiting_run_and_commits_every_offset(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    agent = llm_agent(max_concurrent_runs=4, concurrency={"key": "doc", "on_conflict": "coalesce"})
    project = write_project(tmp_path, {"coalescer": agent})
    first, middle, last = (
        RunRequest.new("coalescer", {"doc": "d1", "message": m}) for m in ("first", "middle", "last")
    )
    async with LLMSimulator([], latency_ms=20) as sim:
        engine = Engine(project, settings=EngineSettings(llm_base_url=sim.base_url))
        runner = _HoldFirst(engine)
        worker = make_worker(project, sim.base_url, runner=runner, commit_interval_s=0.2)
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            await worker.start()
            await worker.wait_assigned()
            processor = worker.processor
            assert processor is not None
            await admin.start()
            async with (
                ResultWatcher(kafka_bootstrap, names) as watcher,
                Submitter(kafka_bootstrap, project, names) as submitter,
            ):
                await submitter.submit(first)
                await asyncio.wait_for(runner.holding.wait(), 30)
                await submitter.submit(middle)  # waits for `first`...
                await submitter.submit(last)  # ...and gives way to this one
                await wait_for(lambda: processor.counts["replaced"] == 1, 30, what="the middle run to be replaced")
                runner.release.set()
                results = await watcher.wait_for([first.run_id, middle.run_id, last.run_id], timeout=30)

            topic = names.request("coalescer")

            async def all_committed() -> bool:
                offsets = await admin.list_consumer_group_offsets(worker.settings.app_id)
                return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0) == 3

            await wait_for(all_committed, 30, interval=0.1, what="the three offsets to be committed")
        finally:
            await admin.close()
            await worker.stop()
            await engine.aclose()

    assert results[first.run_id].status == RunStatus.COMPLETED
    assert results[last.run_id].status == RunStatus.COMPLETED
    replaced = results[middle.run_id]
    assert replaced.status == RunStatus.CANCELLED
    assert replaced.error is not None and replaced.error.category == "cancelled"
    assert f"replaced by a newer run {last.run_id}" in replaced.error.message
    assert results[first.run_id].ended_at <= results[last.run_id].started_at  # one key: never side by side
    assert sim.calls_total == 2  # the replaced run never reached the model
    assert processor.counts["results"] == 3
