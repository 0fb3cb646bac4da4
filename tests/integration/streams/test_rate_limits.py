"""Model rate limits from ferry.yaml: calls over the quota wait, across agents, and none fails."""

from __future__ import annotations

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

RPM = 60  # a minute's burst of 60, then one call per second


async def test_requests_per_minute_pace_every_agent_of_the_model_without_failures(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(
        tmp_path,
        {"first": llm_agent(max_concurrent_runs=8), "second": llm_agent(max_concurrent_runs=8)},
        config={"models": {"openai/sim-model": {"requests_per_minute": RPM}}},
    )
    async with LLMSimulator([], latency_ms=0) as sim:
        await make_worker(project, sim.base_url).start()
        requests = [RunRequest.new("first" if i % 2 else "second", {"message": f"m{i}"}) for i in range(RPM + 4)]
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            for request in requests:
                await submitter.send(request)
            await submitter.flush()
            results = await watcher.wait_for([r.run_id for r in requests], timeout=60)
        arrivals = sorted(r.received_at for r in sim.requests)

    assert len(results) == len(requests)
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED}  # waited, never rate_limit
    # A full bucket lets 60 through at once; once it is empty the calls come one per second
    # (the burst itself earns about one more).
    assert arrivals[RPM - 1] - arrivals[0] < 3.0
    assert arrivals[-1] - arrivals[RPM - 1] >= 2.0  # the four calls past the burst: ~1 s apart
    gaps = [later - earlier for earlier, later in zip(arrivals[-3:], arrivals[-2:], strict=False)]
    assert min(gaps) >= 0.9
