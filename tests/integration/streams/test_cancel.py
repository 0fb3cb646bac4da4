"""Cancelling runs through `runs.cancellations`: running ones stop at once, queued ones never start."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.contracts import RunRequest, RunResult, RunStatus, SpanEvent
from app.contracts.errors import ErrorCategory
from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply, ToolCall, ToolCallsReply
from app.streams import ResultWatcher, Submitter, TopicNames
from app.streams.pipeline import stage_run_id
from tests.integration.kafka_helpers import wait_for
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

pytestmark = pytest.mark.integration

TOOL_MODULE = '''
def lookup(query: str) -> str:
    """Look something up.

    Args:
        query: what to look up
    """
    return f"found {query}"
'''

# The first model call asks for the tool at once; the second (after the tool result) hangs.
SLOW_SECOND_CALL = [
    Rule(match=Match(has_tool_result="lookup"), reply=TextReply(text="too late"), delay_ms=60_000),
    Rule(reply=ToolCallsReply(calls=[ToolCall(name="lookup", arguments={"query": "x"})])),
]


def _tool_project(root: Path) -> None:
    (root / "tools").mkdir(parents=True)
    (root / "tools" / "lookup.py").write_text(TOOL_MODULE)


async def test_a_running_run_cancelled_stops_within_a_second_keeping_its_usage(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    _tool_project(tmp_path)
    project = write_project(tmp_path, {"slow": llm_agent(tools=["lookup.lookup"], max_iterations=3, timeout=120)})
    async with LLMSimulator(SLOW_SECOND_CALL, record_requests=False) as sim:
        worker = make_worker(project, sim.base_url)
        await worker.start()
        await worker.wait_assigned()
        request = RunRequest.new("slow", {"message": "look it up"})
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            await submitter.submit(request)
            await wait_for(lambda: sim.calls_total == 2, 60, what="the run to wait on its second model call")
            loop = asyncio.get_running_loop()
            await submitter.cancel(request.run_id)
            cancelled_at = loop.time()
            results = await watcher.wait_for([request.run_id], timeout=30)
    result = results[request.run_id]
    assert result.status == RunStatus.CANCELLED
    assert watcher.arrivals[request.run_id] - cancelled_at < 1.0
    assert result.error is not None and result.error.category == ErrorCategory.CANCELLED
    # The usage so far is kept: the first model call and the tool call it asked for.
    assert result.usage.llm_calls >= 1 and result.usage.total_tokens > 0
    assert result.usage.tool_calls == 1


async def test_a_queued_run_cancelled_ends_at_once_and_never_reaches_the_model(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"single": llm_agent(max_concurrent_runs=1)})
    rules = [Rule(match=Match(last_user_contains="holder"), reply=TextReply(text="held"), delay_ms=60_000)]
    async with LLMSimulator(rules, record_requests=False) as sim:
        worker = make_worker(project, sim.base_url, drain_seconds=0.5)
        await worker.start()
        await worker.wait_assigned()
        holder = RunRequest.new("single", {"message": "holder"})
        queued = RunRequest.new("single", {"message": "queued"})
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            await submitter.submit(holder)
            await wait_for(lambda: sim.calls_total == 1, 60, what="the holder to take the only slot")
            await submitter.submit(queued)
            processor = worker.processor
            assert processor is not None
            await wait_for(lambda: processor.held("single") == 2, 60, what="the second run to queue")
            await submitter.cancel(queued.run_id)
            # Ended at once, while the holder still has the slot (it would answer in a minute).
            results = await watcher.wait_for([queued.run_id], timeout=30)
            assert holder.run_id not in watcher.results
            assert processor.held("single") == 1
    assert results[queued.run_id].status == RunStatus.CANCELLED
    assert results[queued.run_id].usage.llm_calls == 0
    assert sim.calls_total == 1  # the cancelled run never called the model


async def test_cancelling_a_pipeline_cancels_its_running_stage_and_no_later_stage_runs(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(
        tmp_path,
        {
            "first": llm_agent(),
            "second": llm_agent(),
            "pipe": {"type": "sequential", "agents": ["first", "second"]},
        },
    )
    async with LLMSimulator([Rule(reply=TextReply(text="slow"), delay_ms=60_000)], record_requests=False) as sim:
        worker = make_worker(project, sim.base_url)
        await worker.start()
        await worker.wait_assigned()
        request = RunRequest.new("pipe", {"message": "go"})
        async with (
            ResultWatcher(kafka_bootstrap, names) as watcher,
            Submitter(kafka_bootstrap, project, names) as submitter,
        ):
            await submitter.submit(request)
            await wait_for(lambda: sim.calls_total == 1, 60, what="stage 0 to call the model")
            await submitter.cancel(request.run_id)
            results = await watcher.wait_for([request.run_id, stage_run_id(request.run_id, 0)], timeout=30)
            await watcher.poll(timeout_ms=500)
    assert results[request.run_id].status == RunStatus.CANCELLED
    assert results[stage_run_id(request.run_id, 0)].status == RunStatus.CANCELLED
    assert stage_run_id(request.run_id, 1) not in watcher.results
    assert sim.calls_total == 1


async def test_a_cancel_sent_while_no_worker_ran_holds_for_the_run_read_later(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent()})
    async with LLMSimulator([], record_requests=False) as sim:
        first = make_worker(project, sim.base_url)
        await first.start()  # creates the topics
        await first.stop()
        request = RunRequest.new("echo", {"message": "never"})
        async with Submitter(kafka_bootstrap, project, names) as submitter:
            await submitter.cancel(request.run_id)
            worker = make_worker(project, sim.base_url)
            await worker.start()
            await worker.wait_assigned()
            async with ResultWatcher(kafka_bootstrap, names) as watcher:
                await submitter.submit(request)
                results = await watcher.wait_for([request.run_id], timeout=60)
    assert results[request.run_id].status == RunStatus.CANCELLED
    assert sim.calls_total == 0


class _SlowToRegister:
    """A runner that holds a run for a while before it can be cancelled, as the engine
    does between the processor's start check and its own bookkeeping of the run."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.registered = asyncio.Event()
        self.stop = asyncio.Event()
        self.refused = asyncio.Event()

    def cancel(self, run_id: str) -> bool:
        if not self.registered.is_set():
            self.refused.set()
            return False
        self.stop.set()
        return True

    async def run(
        self, request: RunRequest, *, on_span: Callable[[SpanEvent], None] | None = None, trace_context: Any = None
    ) -> RunResult:
        started = datetime.now(UTC)
        self.entered.set()
        async with asyncio.timeout(60):
            await self.refused.wait()  # not cancellable until a cancel came too early
        self.registered.set()
        try:
            async with asyncio.timeout(60):
                await self.stop.wait()
        except TimeoutError:
            return RunResult.for_request(request, RunStatus.COMPLETED, started_at=started, ended_at=datetime.now(UTC))
        return RunResult.for_request(request, RunStatus.CANCELLED, started_at=started, ended_at=datetime.now(UTC))


async def test_a_run_cancelled_as_it_starts_is_stopped_once_the_runner_holds_it(
    tmp_path: Path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent()})
    runner = _SlowToRegister()
    worker = make_worker(project, "http://127.0.0.1:9/v1", runner=runner)
    await worker.start()
    await worker.wait_assigned()
    request = RunRequest.new("echo", {"message": "now"})
    async with (
        ResultWatcher(kafka_bootstrap, names) as watcher,
        Submitter(kafka_bootstrap, project, names) as submitter,
    ):
        await submitter.submit(request)
        await asyncio.wait_for(runner.entered.wait(), 60)
        await submitter.cancel(request.run_id)
        results = await watcher.wait_for([request.run_id], timeout=30)
    assert results[request.run_id].status == RunStatus.CANCELLED
