"""Run deadline (partial / fail), tool timeout, and cancellation that leaves nothing running."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.contracts import RunRequest, RunStatus, SpanKind
from app.contracts.errors import ErrorCategory
from app.devstack.llm_sim import Match, Rule, TextReply, ToolCall, ToolCallsReply

SLOW_TOOLS = '''
    import asyncio
    from pathlib import Path

    def quick(item: str) -> dict:
        """Quick lookup."""
        return {"item": item, "price": 42}

    async def slow(item: str, context: dict) -> str:
        """Slow lookup."""
        marker = Path(context["marker_dir"]) / (context["run_id"] + "-" + item)
        marker.write_text("started")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            marker.write_text("cancelled")
            raise
        return "never"
'''


def _rules() -> list[Rule]:
    return [
        Rule(match=Match(has_tool_result="slow"), reply=TextReply(text="done")),
        Rule(
            match=Match(has_tool_result="quick"),
            reply=ToolCallsReply(
                text="price found, checking stock", calls=[ToolCall(name="slow", arguments={"item": "x"})]
            ),
        ),
        Rule(reply=ToolCallsReply(calls=[ToolCall(name="quick", arguments={"item": "x"})])),
    ]


def _request(agent: str, tmp_path: Path, seconds: float) -> RunRequest:
    return RunRequest.new(
        agent,
        "price of x?",
        deadline=datetime.now(UTC) + timedelta(seconds=seconds),
        context={"marker_dir": str(tmp_path)},
    )


async def test_run_deadline_returns_partial_output(make_project, sim, engine_factory, tmp_path) -> None:
    project = make_project([{"name": "a", "tools": ["shop.quick", "shop.slow"]}], tools={"shop": SLOW_TOOLS})
    sim.set_rules(_rules())
    spans = []
    started = time.monotonic()
    result = await engine_factory(project).run(_request("a", tmp_path, 1.0), on_span=spans.append)
    assert time.monotonic() - started < 3
    assert result.status is RunStatus.TIMEOUT and result.partial is True
    assert result.error is not None and result.error.category is ErrorCategory.TIMEOUT
    assert result.output["last_message"] == "price found, checking stock"
    assert result.output["tool_results"] == [{"tool": "quick", "result": {"item": "x", "price": 42}}]
    assert result.usage.llm_calls == 2
    run = next(s for s in spans if s.kind is SpanKind.RUN)
    assert run.attributes["error.category"] == "timeout"
    # The slow tool was cancelled by the deadline, not left running.
    assert (tmp_path / f"{result.run_id}-x").read_text() == "cancelled"


async def test_on_timeout_fail_returns_no_output(make_project, sim, engine_factory, tmp_path) -> None:
    project = make_project(
        [{"name": "a", "tools": ["shop.quick", "shop.slow"], "on_timeout": "fail"}], tools={"shop": SLOW_TOOLS}
    )
    sim.set_rules(_rules())
    result = await engine_factory(project).run(_request("a", tmp_path, 1.0))
    assert result.status is RunStatus.TIMEOUT
    assert result.output is None and result.partial is False


async def test_agent_timeout_bounds_a_hanging_llm(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "a", "timeout": 5}])
    sim.set_rules([Rule(reply=TextReply(text="too late", delay_ms=20_000))])
    started = time.monotonic()
    result = await engine_factory(project).run(RunRequest.new("a", "hi"))
    assert 4.5 < time.monotonic() - started < 7
    assert result.status is RunStatus.TIMEOUT and result.partial is False and result.output is None


async def test_tool_timeout_is_reported_to_the_model(make_project, sim, engine_factory, tmp_path) -> None:
    project = make_project(
        [{"name": "a", "tools": ["shop.quick", "shop.slow"], "tool_timeout": 0.3}], tools={"shop": SLOW_TOOLS}
    )
    sim.set_rules(_rules())
    spans = []
    started = time.monotonic()
    result = await engine_factory(project).run(_request("a", tmp_path, 20), on_span=spans.append)
    assert time.monotonic() - started < 5
    assert result.status is RunStatus.COMPLETED and result.output == "done"
    slow_span = next(s for s in spans if s.kind is SpanKind.TOOL_CALL and s.attributes["tool"] == "slow")
    assert slow_span.attributes["error.category"] == "tool_timeout"
    tool_message = sim.requests[-1].body["messages"][-1]
    assert tool_message["role"] == "tool" and "did not finish within 0.3s" in tool_message["content"]


#: Long-lived tasks that are not the run's: the simulator's HTTP handlers, litellm's logging worker.
_INFRASTRUCTURE = ("aiohttp", "LoggingWorker", "RequestHandler")


def _leftover(before: set[asyncio.Task]) -> list[str]:
    """Tasks started since `before` that still run, except the simulator's HTTP handlers."""
    return [
        repr(t.get_coro())
        for t in asyncio.all_tasks() - before
        if t is not asyncio.current_task()
        and not t.done()
        and not any(k in repr(t.get_coro()) for k in _INFRASTRUCTURE)
    ]


async def test_engine_cancel_returns_cancelled_and_leaves_no_task(make_project, sim, engine_factory, tmp_path) -> None:
    project = make_project([{"name": "a", "tools": ["shop.quick", "shop.slow"]}], tools={"shop": SLOW_TOOLS})
    sim.set_rules(
        [
            Rule(
                reply=ToolCallsReply(
                    calls=[
                        ToolCall(name="slow", arguments={"item": "p"}),
                        ToolCall(name="slow", arguments={"item": "q"}),
                    ]
                )
            )
        ]
    )
    engine = engine_factory(project)
    before = set(asyncio.all_tasks())
    request = _request("a", tmp_path, 60)
    task = asyncio.create_task(engine.run(request))
    for _ in range(200):
        if all((tmp_path / f"{request.run_id}-{i}").exists() for i in "pq"):
            break
        await asyncio.sleep(0.02)
    assert engine.cancel(request.run_id)
    result = await task
    assert result.status is RunStatus.CANCELLED
    assert result.error is not None and result.error.category is ErrorCategory.CANCELLED
    await asyncio.sleep(0.05)
    assert _leftover(before) == [], _leftover(before)
    assert {(tmp_path / f"{request.run_id}-{i}").read_text() for i in "pq"} == {"cancelled"}


async def test_cancelling_the_caller_propagates_and_stops_tools(make_project, sim, engine_factory, tmp_path) -> None:
    project = make_project([{"name": "a", "tools": ["shop.quick", "shop.slow"]}], tools={"shop": SLOW_TOOLS})
    sim.set_rules([Rule(reply=ToolCallsReply(calls=[ToolCall(name="slow", arguments={"item": "r"})]))])
    engine = engine_factory(project)
    before = set(asyncio.all_tasks())
    request = _request("a", tmp_path, 60)
    task = asyncio.create_task(engine.run(request))
    marker = tmp_path / f"{request.run_id}-r"
    for _ in range(200):
        if marker.exists():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert marker.read_text() == "cancelled"
    assert _leftover(before) == [], _leftover(before)
