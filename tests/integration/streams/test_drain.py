"""A worker asked to stop lets its running runs finish, leaves the rest to Kafka, and exits."""

from __future__ import annotations

import asyncio
import time

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.engine import Engine, EngineSettings
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project


async def test_stop_drains_running_runs_and_the_next_worker_takes_the_rest(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"slow": llm_agent(max_concurrent_runs=2)})
    async with LLMSimulator([], latency_ms=1500, record_requests=False) as sim:
        # One engine for both workers: closing an engine closes litellm's process-wide clients,
        # which would break the second worker of this process (in production each is a process).
        engine = Engine(project, settings=EngineSettings(llm_base_url=sim.base_url))
        first = make_worker(project, sim.base_url, drain_seconds=10.0, runner=engine)
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
            async with asyncio.timeout(30):
                while sim.in_flight < 2:  # two runs are executing, six wait in the worker
                    await asyncio.sleep(0.05)
            started = time.monotonic()
            await first.stop()
            stop_took = time.monotonic() - started
            drained = await watcher.wait_for([r.run_id for r in requests], timeout=1)

            second = make_worker(project, sim.base_url, runner=engine)
            await second.start()
            results = await watcher.wait_for([r.run_id for r in requests], timeout=60)
            await watcher.poll(timeout_ms=500)
            await second.stop()
        await engine.aclose()

    assert len(drained) == 2  # the runs in flight finished during the stop, and only they
    assert 0.5 < stop_took < 10.0  # it waited for them, not for the deadline
    assert len(results) == len(requests) and watcher.duplicates == 0
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED}, [
        (r.run_id[:8], r.error) for r in results.values() if r.error
    ]
    assert sim.calls_total == len(requests)  # nothing ran twice
