"""A burst of records already fetched reaches the lanes many per event-loop turn.

faust hands each fetched record to its agent through `wait_first` (several loop turns) and
its stream iterator sleeps one turn before every event, so a worker took at most one record
per turn: with 64 runs in flight each turn is long, and that capped a worker at ~134 runs/s
whatever the model latency (bench/RESULTS.md, "Peers side by side"). `faust_app.py` now
delivers a fetched batch in the turn it arrives and lets each agent take its buffer in one
turn. This test counts loop turns with a ticker and checks that records arrive in bunches,
and that every one still gets exactly one result.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames, apply_topics
from app.streams.processor import Processor, Record
from app.streams.topic_plan import plan_topics
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

pytestmark = pytest.mark.integration

RUNS = 300


async def test_a_fetched_burst_reaches_the_lanes_in_bunches_and_each_run_gets_one_result(
    tmp_path,
    kafka_bootstrap: str,
    simulator: LLMSimulator,
    make_worker: WorkerFactory,
    names: TopicNames,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=4)})
    await apply_topics(kafka_bootstrap, plan_topics(project, names))
    requests = [RunRequest.new("echo", {"message": f"hello {i}"}) for i in range(RUNS)]
    async with Submitter(kafka_bootstrap, project, names) as sub:
        for request in requests:
            await sub.send(request)
        await sub.flush()  # all of them in the topic before the worker's first fetch

    turn = 0
    handled_in_turn: Counter[int] = Counter()
    all_handled = asyncio.Event()
    original = Processor.handle

    async def counted(self: Processor, record: Record, binding: object) -> None:
        handled_in_turn[turn] += 1
        if sum(handled_in_turn.values()) >= RUNS:
            all_handled.set()
        await original(self, record, binding)  # type: ignore[arg-type]

    async def ticker() -> None:  # one increment per event-loop turn
        nonlocal turn
        while not all_handled.is_set():
            turn += 1
            await asyncio.sleep(0)

    monkeypatch.setattr(Processor, "handle", counted)
    async with ResultWatcher(kafka_bootstrap, names, from_beginning=True) as watcher:
        worker = make_worker(project, simulator.base_url)
        ticking = asyncio.create_task(ticker())
        await worker.start()
        try:
            await asyncio.wait_for(all_handled.wait(), 60)
        finally:
            all_handled.set()
            await ticking
        results = await watcher.wait_for([r.run_id for r in requests], timeout=120)

    most = max(handled_in_turn.values())
    assert most >= 10, f"at most {most} records reached the lanes in one loop turn ({len(handled_in_turn)} turns)"
    assert len(results) == RUNS
    assert watcher.duplicates == 0
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED}
    assert simulator.calls_total == RUNS
