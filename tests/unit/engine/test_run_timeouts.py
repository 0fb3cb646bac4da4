"""Run deadline (partial / fail), tool timeout, and cancellation that leaves nothing running."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest

from app.contracts import RunRequest, RunStatus, SpanKind
from app.contracts.errors import ErrorCategory
from app.engine import Clock, FakeClock, SystemClock
from app.engine.testing import Reply, ScriptedLLM, tool_call
from tests.unit.engine.conftest import of_kind

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
SHOP = {"name": "a", "tools": ["shop.quick", "shop.slow"]}


def _script() -> list:
    return [
        Reply(tool_calls=[tool_call("quick", {"item": "x"})]),
        Reply(text="price found, checking stock", tool_calls=[tool_call("slow", {"item": "x"})]),
        "done",
    ]


def _request(agent: str, tmp_path: Path, clock: Clock, seconds: float) -> RunRequest:
    return RunRequest.new(
        agent,
        "price of x?",
        deadline=clock.now() + timedelta(seconds=seconds),
        context={"marker_dir": str(tmp_path)},
    )


async def _until(condition, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_run_deadline_returns_partial_output(make_project, engine_for, tmp_path) -> None:
    project = make_project([SHOP], tools={"shop": SLOW_TOOLS})
    clock = FakeClock()
    spans = []
    request = _request("a", tmp_path, clock, 60)
    run = asyncio.create_task(
        engine_for(project, ScriptedLLM(_script()), clock=clock).run(request, on_span=spans.append)
    )
    marker = tmp_path / f"{request.run_id}-x"
    await _until(marker.exists, "the slow tool started")
    clock.advance(60)  # the deadline passes while the slow tool runs
    result = await run
    assert result.status is RunStatus.TIMEOUT and result.partial is True
    assert result.error is not None and result.error.category is ErrorCategory.TIMEOUT
    assert result.output["last_message"] == "price found, checking stock"
    assert result.output["tool_results"] == [{"tool": "quick", "result": {"item": "x", "price": 42}}]
    assert result.usage.llm_calls == 2
    run_span = next(s for s in spans if s.kind is SpanKind.RUN)
    assert run_span.attributes["error.category"] == "timeout"
    # The slow tool was cancelled by the deadline, not left running.
    assert marker.read_text() == "cancelled"


async def test_on_timeout_fail_returns_no_output(make_project, engine_for, tmp_path) -> None:
    project = make_project([{**SHOP, "on_timeout": "fail"}], tools={"shop": SLOW_TOOLS})
    clock = FakeClock()
    request = _request("a", tmp_path, clock, 60)
    run = asyncio.create_task(engine_for(project, ScriptedLLM(_script()), clock=clock).run(request))
    await _until((tmp_path / f"{request.run_id}-x").exists, "the slow tool started")
    clock.advance(60)
    result = await run
    assert result.status is RunStatus.TIMEOUT
    assert result.output is None and result.partial is False


async def test_a_real_deadline_ends_a_real_run(make_project, engine_for, tmp_path) -> None:
    project = make_project([SHOP], tools={"shop": SLOW_TOOLS})
    clock = SystemClock()
    started = time.monotonic()
    result = await engine_for(project, ScriptedLLM(_script()), clock=clock).run(_request("a", tmp_path, clock, 0.5))
    assert 0.4 < time.monotonic() - started < 3
    assert result.status is RunStatus.TIMEOUT and result.partial is True
    assert (tmp_path / f"{result.run_id}-x").read_text() == "cancelled"


async def test_agent_timeout_bounds_a_hanging_llm(make_project, engine_for) -> None:
    project = make_project([{"name": "a", "timeout": 5}])
    clock = FakeClock()
    llm = ScriptedLLM([Reply(text="too late", latency=20)], clock=clock)
    started = clock.monotonic()
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("a", "hi"))
    assert clock.monotonic() - started == 5.0
    assert result.status is RunStatus.TIMEOUT and result.partial is False and result.output is None
    assert result.error is not None and result.error.message == "run did not finish within 5s"
    assert [r.timeout for r in llm.requests] == [5.0]  # the attempt was capped by the run's time left


async def test_tool_timeout_is_reported_to_the_model(make_project, engine_for, tmp_path) -> None:
    project = make_project([{**SHOP, "tool_timeout": 0.3}], tools={"shop": SLOW_TOOLS})
    llm = ScriptedLLM(_script())
    spans = []
    started = time.monotonic()
    result = await engine_for(project, llm).run(_request("a", tmp_path, SystemClock(), 20), on_span=spans.append)
    assert time.monotonic() - started < 5
    assert result.status is RunStatus.COMPLETED and result.output == "done"
    slow_span = next(s for s in of_kind(spans, SpanKind.TOOL_CALL) if s.attributes["tool"] == "slow")
    assert slow_span.attributes["error.category"] == "tool_timeout"
    tool_message = llm.requests[-1].messages[-1]
    assert tool_message["role"] == "tool" and "did not finish within 0.3s" in tool_message["content"]
    assert (tmp_path / f"{result.run_id}-x").read_text() == "cancelled"


def _leftover(before: set[asyncio.Task]) -> list[str]:
    """Tasks started since `before` that still run."""
    return [
        repr(t.get_coro()) for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()
    ]


async def test_engine_cancel_returns_cancelled_and_leaves_no_task(make_project, engine_for, tmp_path) -> None:
    project = make_project([SHOP], tools={"shop": SLOW_TOOLS})
    llm = ScriptedLLM([Reply(tool_calls=[tool_call("slow", {"item": "p"}), tool_call("slow", {"item": "q"})])])
    engine = engine_for(project, llm)
    before = set(asyncio.all_tasks())
    request = _request("a", tmp_path, SystemClock(), 60)
    task = asyncio.create_task(engine.run(request))
    await _until(lambda: all((tmp_path / f"{request.run_id}-{i}").exists() for i in "pq"), "both tools started")
    assert engine.cancel(request.run_id)
    result = await task
    assert result.status is RunStatus.CANCELLED
    assert result.error is not None and result.error.category is ErrorCategory.CANCELLED
    assert _leftover(before) == []  # the run's tool tasks ended before its result came back
    assert {(tmp_path / f"{request.run_id}-{i}").read_text() for i in "pq"} == {"cancelled"}
    assert not engine.cancel(request.run_id)  # a finished run cannot be cancelled again


async def test_cancelling_the_caller_propagates_and_stops_tools(make_project, engine_for, tmp_path) -> None:
    project = make_project([SHOP], tools={"shop": SLOW_TOOLS})
    engine = engine_for(project, ScriptedLLM([Reply(tool_calls=[tool_call("slow", {"item": "r"})])]))
    before = set(asyncio.all_tasks())
    request = _request("a", tmp_path, SystemClock(), 60)
    task = asyncio.create_task(engine.run(request))
    marker = tmp_path / f"{request.run_id}-r"
    await _until(marker.exists, "the tool started")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _leftover(before) == []
    assert marker.read_text() == "cancelled"
