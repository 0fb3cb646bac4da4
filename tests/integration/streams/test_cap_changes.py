"""A deployment that changes `max_concurrent_runs` under load: two running workers apply it
between runs, the simulator's peak concurrency never passes the larger cap during the
switch and settles at the new one; no topic is recreated, no worker restarts, and runs of
one concurrency key still never overlap and start in order."""

from __future__ import annotations

import itertools
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.streams import ResultWatcher, Submitter, TopicNames, Worker
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project
from tests.integration.streams.test_deployments import publish

KEYED = {"key": "customer", "on_conflict": "queue"}


def _agent(cap: int) -> dict[str, object]:
    return llm_agent(system_prompt=f"Cap {cap}.", max_concurrent_runs=cap, concurrency=KEYED)


def _requests(n: int, start: int) -> list[RunRequest]:
    """One run in four carries one of three customers: those must stay serialised."""
    return [
        RunRequest.new("echo", {"message": f"m{i}", **({"customer": f"c{i % 3}"} if i % 4 == 0 else {})})
        for i in range(start, start + n)
    ]


async def _caps_in_force(workers: list[Worker], cap: int) -> None:
    await wait_for(lambda: all(w.caps() == {"echo": cap} for w in workers), 15, what=f"both workers on cap {cap}")


def _running(workers: list[Worker]) -> int:
    return sum(w.processor.loads()["echo"][0] for w in workers if w.processor is not None)


async def _partitions(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return len(described["partitions"])


async def test_raising_a_cap_from_4_to_16_and_lowering_it_to_2_under_load_with_two_workers(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    dirs = {cap: tmp_path / f"cap{cap}" for cap in (4, 16, 2)}
    for cap, root in dirs.items():
        write_project(root, {"echo": _agent(cap)})
    await publish(kafka_bootstrap, names, dirs[4])
    project = write_project(dirs[4], {"echo": _agent(4)})
    async with LLMSimulator([], latency_ms=250, record_requests=False) as sim:
        workers = [make_worker(project, sim.base_url), make_worker(project, sim.base_url)]
        for worker in workers:
            await worker.start()
        await wait_for(lambda: all(w.processor and w.processor.assigned("echo") for w in workers), 60, what="2 workers")
        apps = [w.app for w in workers]
        partitions_before = await _partitions(kafka_bootstrap, names.request("echo"))
        sent: list[RunRequest] = []
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):

            async def submit(n: int) -> None:
                batch = _requests(n, len(sent))
                for request in batch:
                    await submitter.send(request)
                await submitter.flush()
                sent.extend(batch)

            async def results_reach(count: int, timeout: float = 90) -> None:
                async def polled() -> bool:
                    await watcher.poll(timeout_ms=100)
                    return len(watcher.results) >= count

                await wait_for(polled, timeout, what=f"{count} results")

            # Cap 4: both workers busy, 4 runs at once in all.
            await submit(60)
            await results_reach(12)
            sim.reset()
            await results_reach(40)
            peak_4 = sim.peak_in_flight

            # Raise to 16 under load: never past 16 while the workers switch, then 16.
            await submit(400)
            await results_reach(60)
            sim.reset()
            await publish(kafka_bootstrap, names, dirs[16])
            await _caps_in_force(workers, 16)
            peak_raising = sim.peak_in_flight
            sim.reset()
            done = len(watcher.results)
            await results_reach(done + 120)
            peak_16 = sim.peak_in_flight

            # Lower to 2 under load: never past 16 (the larger) while runs drain, then 2.
            sim.reset()
            await publish(kafka_bootstrap, names, dirs[2])
            await _caps_in_force(workers, 2)
            # A run admitted under cap 16 may sit between its slot and its model call, unseen by
            # the simulator: wait on the workers' own running counts, not only on the simulator's.
            await wait_for(
                lambda: _running(workers) <= 2 and sim.in_flight <= 2,
                30,
                what="the runs started under cap 16 to finish",
            )
            peak_lowering = sim.peak_in_flight
            sim.reset()
            done = len(watcher.results)
            await results_reach(done + 24)
            peak_2 = sim.peak_in_flight

            await publish(kafka_bootstrap, names, dirs[16])  # and up again, to drain the rest quickly
            results = await watcher.wait_for([r.run_id for r in sent], timeout=120)
            await watcher.read_to_end()
        partitions_after = await _partitions(kafka_bootstrap, names.request("echo"))

    assert peak_4 == 4
    assert peak_raising <= 16
    assert peak_16 == 16
    assert peak_lowering <= 16
    assert peak_2 == 2
    assert len(results) == len(sent) and {r.status for r in results.values()} == {RunStatus.COMPLETED}
    assert watcher.duplicates == 0
    assert partitions_before == partitions_after == 12  # the spec's count: nothing recreated
    assert [w.app for w in workers] == apps and all(w.app is not None for w in workers)  # no restart
    for customer in ("c0", "c1", "c2"):  # per-key order survived every change
        runs = [results[r.run_id] for r in sent if r.input.get("customer") == customer]
        assert all(a.ended_at <= b.started_at for a, b in itertools.pairwise(runs)), customer


async def test_a_cap_below_the_number_of_workers_moves_the_partitions_to_cap_workers_and_back(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    """Cap 1 over two workers would give one of them a share of 0: its runs would wait
    forever. It asks the group to rebalance, and the assignor puts every partition on one
    worker; raised again, the partitions spread back over both."""
    dirs = {cap: tmp_path / f"cap{cap}" for cap in (4, 1)}
    for cap, root in dirs.items():
        write_project(root, {"echo": _agent(cap)})
    await publish(kafka_bootstrap, names, dirs[4])
    project = write_project(dirs[4], {"echo": _agent(4)})
    async with LLMSimulator([], latency_ms=100, record_requests=False) as sim:
        workers = [make_worker(project, sim.base_url), make_worker(project, sim.base_url)]
        for worker in workers:
            await worker.start()
        await wait_for(lambda: all(w.processor and w.processor.assigned("echo") for w in workers), 60, what="2 workers")
        await publish(kafka_bootstrap, names, dirs[1])
        await wait_for(
            lambda: sorted(len(w.processor.assigned("echo")) if w.processor else -1 for w in workers) == [0, 12],
            60,
            what="every partition on one worker",
        )
        sim.reset()
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            requests = _requests(20, 0)
            for request in requests:
                await submitter.send(request)
            await submitter.flush()
            results = await watcher.wait_for([r.run_id for r in requests], timeout=60)
            peak_1 = sim.peak_in_flight

            await publish(kafka_bootstrap, names, dirs[4])
            await wait_for(
                lambda: all(w.processor and w.processor.assigned("echo") for w in workers),
                60,
                what="the partitions back on both workers",
            )
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED} and len(results) == 20  # none stuck
    assert peak_1 == 1
