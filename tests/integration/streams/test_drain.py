"""A worker asked to stop lets its running runs finish, leaves the rest to Kafka, and exits."""

from __future__ import annotations

import asyncio

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.engine import Engine, EngineSettings
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

DRAIN_S = 120.0  # far longer than a run: a stop that waited for this deadline fails the test


async def test_stop_drains_running_runs_and_the_next_worker_takes_the_rest(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"slow": llm_agent(max_concurrent_runs=2)})
    async with LLMSimulator([], latency_ms=1500, record_requests=False) as sim:
        # One engine for both workers: closing an engine closes litellm's process-wide clients,
        # which would break the second worker of this process (in production each is a process).
        engine = Engine(project, settings=EngineSettings(llm_base_url=sim.base_url))
        first = make_worker(project, sim.base_url, drain_seconds=DRAIN_S, runner=engine)
        await first.start()
        await first.wait_assigned()
        requests = [RunRequest.new("slow", {"message": f"m{i}"}) for i in range(8)]
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in requests:
                await submitter.send(request)
            await submitter.flush()
            # two runs are executing, six wait in the worker
            await wait_for(lambda: sim.in_flight == 2, 30, what="two runs at the model")
            async with asyncio.timeout(DRAIN_S / 2):  # it waits for the runs, not for the drain deadline
                await first.stop()
            await watcher.read_to_end()  # everything the first worker wrote, and nothing more
            drained = dict(watcher.results)

            second = make_worker(project, sim.base_url, runner=engine)
            await second.start()
            results = await watcher.wait_for([r.run_id for r in requests], timeout=60)
            await second.stop()
            await watcher.read_to_end()
        await engine.aclose()

    # The runs in flight finished during the stop (their results were written before it
    # returned), and only they: the queued ones were left to Kafka.
    assert len(drained) == 2 and {r.status for r in drained.values()} == {RunStatus.COMPLETED}
    assert len(results) == len(requests) and watcher.duplicates == 0
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED}, [
        (r.run_id[:8], r.error) for r in results.values() if r.error
    ]
    assert sim.calls_total == len(requests)  # nothing ran twice
