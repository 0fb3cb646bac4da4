"""What a worker says about its own activity: what `ferry worker` reads to hand its heap
back once a busy spell is over (app/cli/gc_tuning.py)."""

from __future__ import annotations

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project


async def test_a_worker_is_busy_while_runs_go_and_counts_them_once_quiet(
    tmp_path, kafka_bootstrap: str, names: TopicNames, make_worker: WorkerFactory
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=2)})
    async with LLMSimulator([], latency_ms=200, record_requests=False) as sim:
        worker = make_worker(project, sim.base_url)
        await worker.start()
        await worker.wait_assigned()
        assert not worker.busy() and worker.records_handled() == 0
        requests = [RunRequest.new("echo", {"message": f"m{i}"}) for i in range(8)]
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in requests:
                await submitter.send(request)
            await submitter.flush()
            await wait_for(worker.busy, 30, what="the worker to be running the runs")
            results = await watcher.wait_for([r.run_id for r in requests], timeout=60)
        await wait_for(lambda: not worker.busy(), 30, what="the worker to go quiet")
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED} and len(results) == 8
    assert worker.records_handled() == 8
