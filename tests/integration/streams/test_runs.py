"""Runs through the broker: every request gets exactly one result."""

from __future__ import annotations

import time

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

RUNS = 1000


async def test_a_thousand_runs_each_get_exactly_one_result(
    tmp_path, kafka_bootstrap: str, simulator: LLMSimulator, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=16)})
    worker = make_worker(project, simulator.base_url)
    await worker.start()
    requests = [RunRequest.new("echo", {"message": f"hello {i}"}, tenant=f"t{i % 3}") for i in range(RUNS)]
    started = time.monotonic()
    async with ResultWatcher(kafka_bootstrap, names) as watcher, Submitter(kafka_bootstrap, project, names) as sub:
        for request in requests:
            await sub.send(request)
        await sub.flush()
        results = await watcher.wait_for([r.run_id for r in requests], timeout=120)
        await watcher.poll(timeout_ms=1000)  # anything arriving twice shows up here
    elapsed = time.monotonic() - started

    assert len(results) == RUNS, f"{RUNS - len(results)} runs got no result in {elapsed:.1f}s"
    assert watcher.duplicates == 0
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED}
    assert results[requests[7].run_id].output == "Simulated reply to: hello 7"
    assert simulator.calls_total == RUNS  # no run executed twice
    assert simulator.peak_in_flight <= 16
