"""Runs failed by a provider outage are tried again later from retry topics, not failed for good.

The simulator answers 503 for a while: each run fails, waits on `runs.retry.<delay>s`
(holding no slot), comes back with the same run id and the next attempt number, and
completes once the provider is back; only a run whose tries are spent ends failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import FaultKind, FaultReply, LLMSimulator, Rule
from app.engine import EngineSettings
from app.project.project import Project
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, Worker
from app.streams.retry_topics import retry_forwarders
from tests.integration.kafka_helpers import unique, wait_for
from tests.integration.streams.conftest import llm_agent, write_project

pytestmark = pytest.mark.integration

RUNS = 5
OUTAGE = Rule(reply=FaultReply(fault=FaultKind.UNAVAILABLE))


@contextlib.asynccontextmanager
async def _worker(project: Project, bootstrap: str, names: TopicNames, base_url: str) -> AsyncIterator[Worker]:
    app_id = unique("ferry-retry")
    delays = project.config.durability.all_retry_delays()
    worker = Worker(
        project,
        StreamSettings(bootstrap=bootstrap, app_id=app_id, topic_prefix=names.prefix, emit_traces=False),
        engine_settings=EngineSettings(llm_base_url=base_url),
        services=retry_forwarders(delays, bootstrap, names, app_id),
    )
    async with worker:
        await worker.wait_assigned()
        yield worker


async def test_runs_failed_by_an_outage_complete_after_it_through_the_retry_topics(
    tmp_path: Path, kafka_bootstrap: str, names: TopicNames
) -> None:
    config = {"durability": {"agents": {"patient": {"retry_delays": [1, 2, 60], "failed_runs": ["llm_unavailable"]}}}}
    project = write_project(tmp_path, {"patient": llm_agent(max_concurrent_runs=4)}, config)
    requests = [RunRequest.new("patient", {"message": f"order {i}"}) for i in range(RUNS)]
    async with (
        LLMSimulator([OUTAGE], record_requests=False) as sim,
        _worker(project, kafka_bootstrap, names, sim.base_url) as worker,
    ):
        processor = worker.processor
        assert processor is not None
        async with ResultWatcher(kafka_bootstrap, names) as watcher:
            async with Submitter(kafka_bootstrap, project, names) as submitter:
                for request in requests:
                    await submitter.submit(request)
            # Two failed tries each (the first, then the one after 1 s), none of them a result.
            await wait_for(lambda: processor.counts["retried_later"] == 2 * RUNS, 60, what="two failed tries per run")
            assert processor.held("patient") == 0  # waiting on the retry topic holds no slot
            sim.set_rules([])  # the provider is back
            results = await watcher.wait_for([r.run_id for r in requests], timeout=60)
            await watcher.read_to_end()

    assert len(results) == RUNS and {r.status for r in results.values()} == {RunStatus.COMPLETED}
    assert watcher.duplicates == 0  # no failed result before the completed one: one result per run
    assert {r.trigger.metadata["attempt"] for r in results.values()} == {3}
    assert sim.calls_total == 3 * RUNS  # each model call counted once per try
    assert processor.counts["failed_kept"] == 0


async def test_a_run_whose_tries_are_spent_ends_failed_and_is_kept(
    tmp_path: Path, kafka_bootstrap: str, names: TopicNames
) -> None:
    config = {"durability": {"agents": {"brief": {"retry_delays": [1], "failed_runs": ["llm_unavailable"]}}}}
    project = write_project(tmp_path, {"brief": llm_agent()}, config)
    request = RunRequest.new("brief", {"message": "order"})
    async with (
        LLMSimulator([OUTAGE], record_requests=False) as sim,
        _worker(project, kafka_bootstrap, names, sim.base_url) as worker,
    ):
        async with ResultWatcher(kafka_bootstrap, names) as watcher:
            async with Submitter(kafka_bootstrap, project, names) as submitter:
                await submitter.submit(request)
            result = (await watcher.wait_for([request.run_id], timeout=60))[request.run_id]
        assert worker.processor is not None and worker.processor.counts["failed_kept"] == 1

    assert result.status == RunStatus.FAILED and result.error is not None
    assert result.error.category == "llm_unavailable"
    assert result.trigger.metadata["attempt"] == 2  # the first try and the one retry
    assert sim.calls_total == 2
