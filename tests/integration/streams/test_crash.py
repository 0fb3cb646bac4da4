"""A worker killed with SIGKILL mid-load: its replacement finishes the work, nothing is lost."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.kafka_helpers import unique, wait_for
from tests.integration.streams.conftest import WorkerFactory, child_env, llm_agent, write_project

ROOT = Path(__file__).resolve().parents[3]
RUNS = 300
CAP = 24  # over 12 partitions: two runs per partition at once, so they finish out of order


async def _start_worker(
    project_dir: Path, bootstrap: str, app_id: str, prefix: str, base_url: str
) -> asyncio.subprocess.Process:
    env = child_env() | {"FERRY_LLM_BASE_URL": base_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "worker",
        "--project",
        str(project_dir),
        "--broker",
        bootstrap,
        "--app-id",
        app_id,
        "--topic-prefix",
        prefix,
        "--no-traces",
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    async with asyncio.timeout(60):
        while b"consuming" not in (line := await process.stderr.readline()):
            assert line, "the worker exited before it started consuming"
    asyncio.get_running_loop().create_task(process.stderr.read())  # keep the pipe from filling
    return process


async def test_a_killed_worker_loses_no_run(tmp_path, kafka_bootstrap: str, prefix: str, names: TopicNames) -> None:
    project = write_project(tmp_path, {"steady": llm_agent(max_concurrent_runs=CAP)})
    app_id = unique("ferry-crash")
    # Every fourth run is slow: later records of its partition finish (and want acking) before it.
    slow = Rule(match=Match(last_user_contains="slow"), reply=TextReply(text="done slowly"), delay_ms=700)
    async with LLMSimulator([slow], latency_ms=60, record_requests=False) as sim:
        first = await _start_worker(tmp_path, kafka_bootstrap, app_id, prefix, sim.base_url)
        second = None
        try:
            requests = [
                RunRequest.new("steady", {"message": f"{'slow' if i % 4 == 0 else 'fast'} job {i}"})
                for i in range(RUNS)
            ]
            async with (
                ResultWatcher(kafka_bootstrap, names) as watcher,
                Submitter(kafka_bootstrap, project, names) as submitter,
            ):
                for request in requests:
                    await submitter.send(request)
                await submitter.flush()
                async with asyncio.timeout(60):
                    while len(watcher.results) < RUNS // 5:
                        await watcher.poll()
                first.send_signal(signal.SIGKILL)  # mid-load: runs in flight, offsets uncommitted
                await first.wait()
                done_before = len(watcher.results)
                second = await _start_worker(tmp_path, kafka_bootstrap, app_id, prefix, sim.base_url)
                results = await watcher.wait_for([r.run_id for r in requests], timeout=120)
                second.send_signal(signal.SIGTERM)
                await asyncio.wait_for(second.wait(), 60)
                await watcher.read_to_end()  # every result the workers ever wrote, duplicates included
        finally:
            for process in (first, second):
                if process is not None and process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(process.wait(), 60)

    assert first.returncode == -signal.SIGKILL
    assert done_before < RUNS  # the kill really was mid-load
    missing = RUNS - len(results)
    assert missing == 0, f"{missing} runs never got a result"
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED}
    # Results already produced by the dead worker are recognised on redelivery, not re-run.
    assert watcher.duplicates == 0
    assert second is not None and second.returncode == 0  # SIGTERM drains and exits cleanly


async def test_the_committed_offset_never_passes_a_run_still_executing(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    """Later runs of a partition finish first; committing past the slow one would lose it on a crash."""
    project = write_project(tmp_path, {"fanout": llm_agent(max_concurrent_runs=24)})  # 2 runs per partition
    slow = Rule(match=Match(last_user_contains="slow"), reply=TextReply(text="done slowly"), delay_ms=3000)
    async with LLMSimulator([slow], latency_ms=20) as sim:
        worker = make_worker(project, sim.base_url, commit_interval_s=0.2)
        await worker.start()
        await worker.wait_assigned()
        processor = worker.processor
        assert processor is not None and worker.app is not None
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            async with Submitter(kafka_bootstrap, project, names) as submitter:
                warm = [RunRequest.new("fanout", {"message": f"warm {i}"}) for i in range(5)]
                for request in warm:  # one record key: one partition, offsets 0-4
                    await submitter.submit(request, key="one-partition")
                await _committed_at_least(admin, worker.settings.app_id, 5)
                await submitter.submit(RunRequest.new("fanout", {"message": "slow"}), key="one-partition")  # 5
                for i in range(9):  # offsets 6-14 finish while 5 still runs
                    await submitter.submit(RunRequest.new("fanout", {"message": f"fast {i}"}), key="one-partition")
            # What the claim depends on: the nine fast runs have their results (and are done
            # as far as the worker goes) while the slow one is still at the model.
            await wait_for(lambda: processor.counts["results"] == 14, 30, what="the 9 fast runs to finish")
            assert sim.in_flight == 1
            await worker.app.commit(None)  # type: ignore[arg-type]  # commit now, whatever the interval
            while_running = await _committed(admin, worker.settings.app_id)
            slow_still_running = sim.in_flight == 1 and processor.counts["results"] == 14
            await _committed_at_least(admin, worker.settings.app_id, 15)
        finally:
            await admin.close()

    assert slow_still_running  # the commit above happened while offset 5 had no result
    assert while_running == 5  # not 15: offset 5 has no result yet
    assert sim.calls_total == 15


async def _committed(admin: AIOKafkaAdminClient, group: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return max((o.offset for o in offsets.values()), default=-1)


async def _committed_at_least(admin: AIOKafkaAdminClient, group: str, offset: int) -> None:
    async def reached() -> bool:
        return await _committed(admin, group) >= offset

    await wait_for(reached, 30, interval=0.1, what=f"the group to commit offset {offset}")
