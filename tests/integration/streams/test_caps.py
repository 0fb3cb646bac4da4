"""Concurrency caps hold across workers; concurrency keys serialise or drop runs."""

from __future__ import annotations

import asyncio
import itertools

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames, Worker
from app.streams.topic_plan import agent_partitions
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

CAP = 5


async def _settled(workers: list[Worker], agent: str, partitions: int, timeout: float = 60) -> None:
    """Until the group has one assignment covering every partition, each worker holding some."""

    def settled() -> bool:
        held = [w.processor.assigned(agent) if w.processor else frozenset() for w in workers]
        return all(held) and sorted(p for h in held for p in h) == list(range(partitions))

    await wait_for(settled, timeout, what="both workers to share every partition")


async def test_max_concurrent_runs_is_a_hard_cap_across_two_workers(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"capped": llm_agent(max_concurrent_runs=CAP)})
    async with LLMSimulator([], latency_ms=150, record_requests=False) as sim:
        workers = [make_worker(project, sim.base_url), make_worker(project, sim.base_url)]
        for worker in workers:
            await worker.start()
        await _settled(workers, "capped", agent_partitions(project, names, "capped"))
        requests = [RunRequest.new("capped", {"message": f"m{i}"}) for i in range(120)]
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in requests:
                await submitter.send(request)
            await submitter.flush()
            results = await watcher.wait_for([r.run_id for r in requests], timeout=90)

        assert len(results) == len(requests)
        assert {r.status for r in results.values()} == {RunStatus.COMPLETED}
        assert sim.peak_in_flight == CAP  # reached under load, never exceeded
        assert all(w.processor and w.processor.counts["results"] > 0 for w in workers)  # both did work


async def test_a_worker_joining_under_load_keeps_the_cap_and_loses_no_run(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    """The rebalance moves queued runs (unacked) and waits for running ones, then splits the shares."""
    project = write_project(tmp_path, {"capped": llm_agent(max_concurrent_runs=CAP)})
    async with LLMSimulator([], latency_ms=150, record_requests=False) as sim:
        first, second = make_worker(project, sim.base_url), make_worker(project, sim.base_url)
        await first.start()
        await first.wait_assigned()
        requests = [
            RunRequest.new("capped", {"message": f"m{i}"}) for i in range(250)
        ]  # ~7 s at the cap: the join lands mid-load
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in requests:
                await submitter.send(request)
            await submitter.flush()
            async with asyncio.timeout(60):
                while len(watcher.results) < 20:
                    await watcher.poll()
            await second.start()  # mid-load: the first worker holds queued and running runs
            results = await watcher.wait_for([r.run_id for r in requests], timeout=120)
            await first.stop()
            await second.stop()
            await watcher.read_to_end()  # every result either worker ever wrote, duplicates included

        assert len(results) == len(requests)
        assert {r.status for r in results.values()} == {RunStatus.COMPLETED}
        assert watcher.duplicates == 0
        assert sim.peak_in_flight == CAP
        assert second.processor is not None and second.processor.counts["results"] > 0


async def test_runs_with_one_concurrency_key_never_overlap(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    agent = llm_agent(max_concurrent_runs=8, concurrency={"key": "customer.id", "on_conflict": "queue"})
    project = write_project(tmp_path, {"keyed": agent})
    async with LLMSimulator([], latency_ms=100) as sim:
        await make_worker(project, sim.base_url).start()
        requests = [
            RunRequest.new("keyed", {"customer": {"id": f"c{i % 2}"}, "message": f"c{i % 2} #{i}"}) for i in range(12)
        ]
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in requests:
                await submitter.send(request)
            await submitter.flush()
            results = await watcher.wait_for([r.run_id for r in requests], timeout=60)

    assert {r.status for r in results.values()} == {RunStatus.COMPLETED} and len(results) == 12
    for key in ("c0", "c1"):
        spans = sorted(
            (r.started_at, r.ended_at)
            for q, r in ((q, results[q.run_id]) for q in requests)
            if q.input["customer"]["id"] == key
        )
        assert all(prev_end <= start for (_, prev_end), (start, _) in itertools.pairwise(spans)), key
    assert sim.peak_in_flight == 2  # the two keys did run side by side


async def test_drop_cancels_the_newcomer_while_its_key_is_busy(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    agent = llm_agent(max_concurrent_runs=4, concurrency={"key": "doc", "on_conflict": "drop"})
    project = write_project(tmp_path, {"dropper": agent})
    async with LLMSimulator([], latency_ms=1500) as sim:
        await make_worker(project, sim.base_url).start()
        first = RunRequest.new("dropper", {"doc": "d1", "message": "first"})
        second = RunRequest.new("dropper", {"doc": "d1", "message": "second"})
        other = RunRequest.new("dropper", {"doc": "d2", "message": "other key"})
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in (first, second, other):
                await submitter.submit(request)
            results = await watcher.wait_for([first.run_id, second.run_id, other.run_id], timeout=60)

    assert results[first.run_id].status == RunStatus.COMPLETED
    assert results[other.run_id].status == RunStatus.COMPLETED
    dropped = results[second.run_id]
    assert dropped.status == RunStatus.CANCELLED
    assert dropped.error is not None and dropped.error.category == "cancelled"
    assert "busy" in dropped.error.message
    assert sim.calls_total == 2  # the dropped run never reached the model
