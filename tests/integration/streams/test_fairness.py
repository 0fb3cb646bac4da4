"""A tenant's backlog does not hold up another tenant (deficit round robin in the read-ahead window)."""

from __future__ import annotations

import asyncio
import statistics

from aiokafka.partitioner import DefaultPartitioner

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames, Worker
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

RUN_S = 0.2
CAP = 5
BIG = 1000


async def _all_read(worker: Worker, count: int, timeout: float = 30) -> None:
    assert worker.processor is not None
    lane = worker.processor.lanes["shared"]
    async with asyncio.timeout(timeout):
        while lane.core.queued + lane.core.running + worker.processor.counts["results"] < count:
            await asyncio.sleep(0.05)


def _spread_over_partitions(count: int, partitions: int) -> list[RunRequest]:
    """Requests whose record keys land evenly on the partitions, as many distinct keys would.

    With ten random keys over five partitions one partition often gets four or five, and a
    partition's share (one run here) serialises them whatever the scheduler does.
    """
    partitioner, chosen, n = DefaultPartitioner(), [], 0
    per_partition = {p: 0 for p in range(partitions)}
    while len(chosen) < count:
        key = f"small-{n}"
        n += 1
        p = partitioner(key.encode(), list(range(partitions)), list(range(partitions)))
        if per_partition[p] < count // partitions:
            per_partition[p] += 1
            chosen.append(RunRequest.new("shared", {"message": key}, tenant="small", idempotency_key=key))
    return chosen


async def test_ten_runs_of_a_small_tenant_pass_a_thousand_queued_runs_of_a_big_one(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"shared": llm_agent(max_concurrent_runs=CAP)})
    async with LLMSimulator([], latency_ms=int(RUN_S * 1000), record_requests=False) as sim:
        worker = make_worker(project, sim.base_url, drain_seconds=1.0)
        await worker.start()
        await worker.wait_assigned()
        big = [RunRequest.new("shared", {"message": f"big {i}"}, tenant="big") for i in range(BIG)]
        small = _spread_over_partitions(10, CAP)
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in big:
                await submitter.send(request)
            await submitter.flush()
            await _all_read(worker, BIG)  # the big tenant's backlog is queued in the worker now
            loop = asyncio.get_running_loop()
            submitted_at = loop.time()

            for request in small:
                await submitter.send(request, key=request.idempotency_key)
            await submitter.flush()
            small_results = await watcher.wait_for([r.run_id for r in small], timeout=60)
            small_done = max(watcher.arrivals[r.run_id] for r in small) - submitted_at
            big_done_by_then = sum(1 for r in big if r.run_id in watcher.results)

    assert len(small_results) == 10
    assert {r.status for r in small_results.values()} == {RunStatus.COMPLETED}
    # Sharing cap 5 equally with the big tenant, 10 runs take 10 / 2.5 = 4 run-times; first in,
    # first out would take 1000 / 5 = 200. A run-time is measured, not assumed: on a busy
    # 2-core machine a 200 ms simulated call takes longer. Allow 6, plus Kafka's hops.
    run_time = statistics.median(r.duration_ms for r in small_results.values()) / 1000
    assert small_done < 6 * run_time + 0.75, f"small tenant finished after {small_done:.2f}s ({run_time=:.2f}s)"
    assert big_done_by_then < BIG / 4  # the big tenant really was still queued
