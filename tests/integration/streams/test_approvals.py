"""Human approval on the real broker: a gated tool call parks its run (no worker slot held),
survives a worker restart while it waits, and runs once after approval; a rejection and a
timeout end the run as the agent says."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from app.contracts import RunRequest, RunResult, RunStatus
from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply, ToolCall, ToolCallsReply
from app.engine import EngineSettings
from app.project.project import Project
from app.streams import ResultWatcher, StreamSettings, Submitter, TopicNames, Worker
from app.streams.approvals import ApprovalBook, ApprovalDesk, ApprovalService
from tests.integration.kafka_helpers import unique, wait_for
from tests.integration.streams.conftest import llm_agent, write_project

pytestmark = pytest.mark.integration

REFUNDS = '''
from pathlib import Path

LEDGER = Path(__file__).with_name("ledger.txt")


def refund(order_id: str, amount: float) -> dict:
    """Refund an order (writes one ledger line per refund actually made)."""
    with LEDGER.open("a") as ledger:
        ledger.write(f"{order_id} {amount}\\n")
    return {"refunded": amount}
'''


def _refund_rules() -> list[Rule]:
    return [
        Rule(match=Match(has_tool_result="refund"), reply=TextReply(text="refund handled")),
        Rule(
            match=Match(last_user_contains="refund"),
            reply=ToolCallsReply(calls=[ToolCall(name="refund", arguments={"order_id": "A1", "amount": 80}, id="c1")]),
        ),
        Rule(reply=TextReply(text="nothing to approve here")),
    ]


@pytest.fixture
async def sim() -> AsyncIterator[LLMSimulator]:
    async with LLMSimulator(_refund_rules()) as simulator:
        yield simulator


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "orders.py").write_text(REFUNDS)
    gated = {"tools": ["orders.refund"], "approval": {"tools": [{"orders.refund": "param.amount > 50"}]}}
    strict = {**gated, "approval": {"tools": ["orders.refund"], "timeout": 30, "on_rejection": "fail"}}
    lenient = {**gated, "approval": {"tools": ["orders.refund"], "on_rejection": "continue"}}
    return write_project(
        tmp_path,
        {
            "desk": llm_agent(max_concurrent_runs=1, **gated),
            "strict": llm_agent(**strict),
            "lenient": llm_agent(**lenient),
        },
    )


@pytest.fixture
async def start_worker(
    kafka_bootstrap: str, project: Project, names: TopicNames, sim: LLMSimulator
) -> AsyncIterator[Callable[[], Awaitable[Worker]]]:
    started: list[Worker] = []
    app_id = unique("ferry-approvals")

    async def start() -> Worker:
        settings = StreamSettings(
            bootstrap=kafka_bootstrap, app_id=app_id, topic_prefix=names.prefix, emit_traces=False
        )
        approvals = ApprovalService(kafka_bootstrap, project, names, app_id, replication=1)
        worker = Worker(
            project, settings, engine_settings=EngineSettings(llm_base_url=sim.base_url), services=[approvals]
        )
        await worker.start()
        await worker.wait_assigned()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        await worker.stop()


async def _result(watcher: ResultWatcher, run_id: str, timeout: float = 60) -> RunResult:
    return (await watcher.wait_for([run_id], timeout=timeout))[run_id]


async def test_a_gated_call_waits_without_a_slot_survives_a_restart_and_runs_once_approved(
    kafka_bootstrap: str, names: TopicNames, project: Project, start_worker, sim: LLMSimulator, tmp_path: Path
) -> None:
    worker = await start_worker()
    book = ApprovalBook(kafka_bootstrap, names)
    await book.start()
    desk = ApprovalDesk(kafka_bootstrap, names)
    await desk.start()
    try:
        async with ResultWatcher(kafka_bootstrap, names) as watcher:
            gated = RunRequest.new("desk", "please refund order A1")
            async with Submitter(kafka_bootstrap, project, names) as submitter:
                await submitter.submit(gated)
                await wait_for(lambda: bool(book.pending()), 60, what="the run parked for approval")
                [waiting] = book.pending()
                assert (waiting.run_id, waiting.tool, waiting.arguments) == (
                    gated.run_id, "refund", {"order_id": "A1", "amount": 80},
                )  # fmt: skip
                # cap 1, and the parked run holds no slot: another run of the agent completes meanwhile
                other = RunRequest.new("desk", "just say hello")
                await submitter.submit(other)
                assert (await _result(watcher, other.run_id)).status == RunStatus.COMPLETED

            await worker.stop()  # the worker restarts while the run waits
            await start_worker()
            assert not (tmp_path / "tools" / "ledger.txt").exists()  # nothing refunded without a decision

            decided = await desk.decide(waiting, approved=True, by="maria", reason="valid claim")
            assert decided.status == "approved"
            result = await _result(watcher, gated.run_id)
        assert result.status == RunStatus.COMPLETED and result.output == "refund handled"
        assert (tmp_path / "tools" / "ledger.txt").read_text() == "A1 80\n"  # the tool ran once
        await wait_for(lambda: book.records[gated.run_id].status == "approved", 30, what="the record decided")
    finally:
        await desk.stop()
        await book.stop()


async def test_a_rejection_and_a_timeout_end_the_run_as_the_agent_says(
    kafka_bootstrap: str, names: TopicNames, project: Project, start_worker, tmp_path: Path
) -> None:
    await start_worker()
    book = ApprovalBook(kafka_bootstrap, names)
    await book.start()
    desk = ApprovalDesk(kafka_bootstrap, names)
    await desk.start()
    try:
        async with ResultWatcher(kafka_bootstrap, names) as watcher:
            told = RunRequest.new("lenient", "refund please")
            expires = RunRequest.new("strict", "refund please")
            async with Submitter(kafka_bootstrap, project, names) as submitter:
                await submitter.submit(told)
                await submitter.submit(expires)
            await wait_for(lambda: len(book.pending()) == 2, 60, what="both runs parked")
            [lenient] = [r for r in book.pending() if r.run_id == told.run_id]
            await desk.decide(lenient, approved=False, by="maria", reason="duplicate claim")
            continued = await _result(watcher, told.run_id)
            timed_out = await _result(watcher, expires.run_id, timeout=90)  # the agent's 30 s, then the expiry
            # The expiry sends the request back before it updates the record: the run's result
            # can reach the watcher before the record reaches the book.
            await wait_for(lambda: book.records[expires.run_id].status == "expired", 30, what="the record expired")
    finally:
        await desk.stop()
        await book.stop()
    assert continued.status == RunStatus.COMPLETED  # on_rejection: continue — the model was told and answered
    assert timed_out.status == RunStatus.FAILED and timed_out.error is not None
    assert timed_out.error.category == "approval" and "no one approved it in time" in timed_out.error.message
    assert not (tmp_path / "tools" / "ledger.txt").exists()  # neither refund was made
