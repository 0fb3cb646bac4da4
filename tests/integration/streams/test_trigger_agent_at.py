"""trigger_agent_at in workers: the scheduled child survives a worker restart and starts once."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.engine import EngineSettings
from app.project.project import Project
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, Worker
from app.streams.connect import topic_partitions
from app.streams.scheduled import ScheduledRuns
from tests.integration.kafka_helpers import unique
from tests.integration.streams.conftest import write_project

pytestmark = pytest.mark.integration

DELAY_S = 5

TOOLS = f'''
from connic.tools import trigger_agent_at


async def plan(payload: dict) -> dict:
    """The parent: asks for the pricing {DELAY_S} seconds from now."""
    return await trigger_agent_at("pricer", {{"qty": payload["qty"]}}, delay={{"s": {DELAY_S}}})


def price(payload: dict) -> dict:
    return {{"total": payload["qty"] * 3}}
'''


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "tools").mkdir(parents=True)
    (tmp_path / "tools" / "orders.py").write_text(textwrap.dedent(TOOLS))
    return write_project(
        tmp_path,
        {
            "front-desk": {"type": "tool", "tool_name": "orders.plan", "retry_options": {"attempts": 1}},
            "pricer": {"type": "tool", "tool_name": "orders.price"},
        },
    )


@pytest.fixture
async def start_worker(
    kafka_bootstrap: str, project: Project, names: TopicNames, simulator: LLMSimulator
) -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    running: list[Worker] = []
    app_id = unique("ferry-scheduled")

    async def start(wait: bool = True) -> Worker:
        settings = StreamSettings(
            bootstrap=kafka_bootstrap, app_id=app_id, topic_prefix=names.prefix, emit_traces=False
        )
        scheduled = ScheduledRuns(kafka_bootstrap, project, names, app_id, replication=1)
        worker = Worker(
            project, settings, engine_settings=EngineSettings(llm_base_url=simulator.base_url), services=[scheduled]
        )
        await worker.start()
        running.append(worker)  # stopped at the end even if it never gets partitions
        if wait:
            await worker.wait_assigned()
        return worker

    yield start
    for worker in running:
        await worker.stop()


async def records_of(bootstrap: str, topic: str, run_id: str) -> list[int]:
    """The timestamps (ms) of every request record of `run_id` on `topic`, read to its end."""
    tps = await topic_partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    stamps: list[int] = []
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        async with asyncio.timeout(60):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    stamps += [r.timestamp for r in records if r.value and json.loads(r.value)["run_id"] == run_id]
    finally:
        await consumer.stop()
    return stamps


async def test_a_scheduled_child_survives_a_worker_restart_and_runs_once(
    kafka_bootstrap: str, names: TopicNames, start_worker: Callable[..., Awaitable[Worker]]
) -> None:
    first = await start_worker()
    parent = RunRequest.new("front-desk", {"qty": 4}, tenant="acme")
    async with ResultWatcher(kafka_bootstrap, names) as watcher:
        async with Submitter(kafka_bootstrap, first.project, names) as submitter:
            await submitter.submit(parent)
        done = (await watcher.wait_for([parent.run_id], timeout=60))[parent.run_id]
        assert done.status is RunStatus.COMPLETED, done.error
        answer = done.output
        assert answer["status"] == "scheduled"
        due = datetime.fromisoformat(answer["scheduled_at"])
        child_id = answer["run_id"]

        await first.stop()  # the only worker goes away before the child is due
        stopped = datetime.now(UTC)
        assert stopped < due, "the worker took longer to stop than the delay: nothing was tested"

        # Two workers come back: one of them leads, and the child starts once. The agents'
        # cap is 1, so one worker holds their partitions and the other none: neither is
        # waited for here, the child's result is.
        await start_worker(wait=False)
        await start_worker(wait=False)
        child = (await watcher.wait_for([child_id], timeout=60))[child_id]
        assert (child.status, child.agent, child.tenant, child.output) == (
            RunStatus.COMPLETED, "pricer", "acme", {"total": 12},
        )  # fmt: skip
        assert child.trigger.source == "agent"
        assert child.trigger.metadata == {
            "parent_run_id": parent.run_id,
            "parent_agent": "front-desk",
            "root_run_id": parent.run_id,
            "scheduled_at": answer["scheduled_at"],
        }
        assert child.started_at is not None and child.started_at >= due

    stamps = await records_of(kafka_bootstrap, names.request("pricer"), child_id)
    assert len(stamps) == 1, f"the child's request was produced {len(stamps)} times"
    assert stamps[0] >= stopped.timestamp() * 1000  # produced by a worker started after the restart
