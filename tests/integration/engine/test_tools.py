"""Tool calls: only the agent's own tools, parallel calls overlap, failures go to the model."""

from __future__ import annotations

import json
import time

from app.contracts import RunRequest, RunStatus, SpanKind
from app.devstack.llm_sim import Match, Rule, TextReply, ToolCall, ToolCallsReply

TOOLS = {
    "shop": '''
        import asyncio
        import time
        from pathlib import Path

        def lookup(item: str, context: dict) -> dict:
            """Look up an item for this tenant."""
            return {"item": item, "tenant": context["tenant"]}

        async def wait_async(n: int) -> list:
            """Sleep half a second."""
            start = time.monotonic()
            await asyncio.sleep(0.5)
            return [start, time.monotonic()]

        def wait_sync(n: int) -> list:
            """Block half a second."""
            start = time.monotonic()
            time.sleep(0.5)
            return [start, time.monotonic()]

        def explode(reason: str) -> str:
            """Always fails."""
            raise RuntimeError("boom: " + reason)
    ''',
    "admin": '''
        from pathlib import Path

        def wipe(path: str) -> str:
            """Dangerous: never offered to the shop agent."""
            Path(path).write_text("wiped")
            return "wiped"
    ''',
}


def _final_after(tool: str) -> Rule:
    return Rule(match=Match(has_tool_result=tool), reply=TextReply(text="done"))


async def test_undeclared_tool_is_refused_and_never_called(make_project, sim, engine_factory, tmp_path) -> None:
    project = make_project(
        [{"name": "shop", "tools": ["shop.lookup"]}, {"name": "admin", "tools": ["admin.wipe"]}], tools=TOOLS
    )
    target = tmp_path / "victim.txt"
    sim.set_rules(
        [
            _final_after("wipe"),
            Rule(reply=ToolCallsReply(calls=[ToolCall(name="wipe", arguments={"path": str(target)})])),
        ]
    )
    spans = []
    result = await engine_factory(project).run(RunRequest.new("shop", "go"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED
    assert not target.exists()
    message = sim.requests[1].body["messages"][-1]
    assert message["role"] == "tool" and "unknown tool 'wipe'" in message["content"]
    assert "lookup" in message["content"]  # the model learns what it may call
    tool_span = next(s for s in spans if s.kind is SpanKind.TOOL_CALL)
    assert tool_span.attributes["error.category"] == "tool_error"
    # The tools offered to the model were only the agent's own.
    offered = [t["function"]["name"] for t in sim.requests[0].body["tools"]]
    assert offered == ["lookup"]


async def test_tool_exception_becomes_a_tool_error_message(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "shop", "tools": ["shop.explode"]}], tools=TOOLS)
    sim.set_rules(
        [
            _final_after("explode"),
            Rule(reply=ToolCallsReply(calls=[ToolCall(name="explode", arguments={"reason": "bad disk"})])),
        ]
    )
    result = await engine_factory(project).run(RunRequest.new("shop", "go"))
    assert result.status is RunStatus.COMPLETED
    content = json.loads(sim.requests[1].body["messages"][-1]["content"])
    assert content == {"error": "RuntimeError: boom: bad disk"}


async def test_invalid_arguments_are_refused_before_the_call(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "shop", "tools": ["shop.lookup"]}], tools=TOOLS)
    sim.set_rules(
        [
            _final_after("lookup"),
            Rule(reply=ToolCallsReply(calls=[ToolCall(name="lookup", arguments={"item": 3})])),
        ]
    )
    await engine_factory(project).run(RunRequest.new("shop", "go"))
    assert "invalid arguments for 'lookup'" in sim.requests[1].body["messages"][-1]["content"]


async def test_model_cannot_override_the_context(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "shop", "tools": ["shop.lookup"]}], tools=TOOLS)
    sim.set_rules(
        [
            _final_after("lookup"),
            Rule(
                reply=ToolCallsReply(
                    calls=[ToolCall(name="lookup", arguments='{"item": "x", "context": {"tenant": "evil"}}')]
                )
            ),
        ]
    )
    await engine_factory(project).run(RunRequest.new("shop", "go", tenant="acme"))
    content = json.loads(sim.requests[1].body["messages"][-1]["content"])
    assert content == {"item": "x", "tenant": "acme"}


async def _overlap(make_project, sim, engine_factory, tool: str) -> None:
    project = make_project([{"name": "shop", "tools": [f"shop.{tool}"]}], tools=TOOLS)
    sim.set_rules(
        [
            _final_after(tool),
            Rule(reply=ToolCallsReply(calls=[ToolCall(name=tool, arguments={"n": i}) for i in range(3)])),
        ]
    )
    started = time.monotonic()
    result = await engine_factory(project).run(RunRequest.new("shop", "go"))
    elapsed = time.monotonic() - started
    assert result.status is RunStatus.COMPLETED and result.usage.tool_calls == 3
    tool_messages = [m for m in sim.requests[1].body["messages"] if m["role"] == "tool"]
    intervals = [json.loads(m["content"]) for m in tool_messages]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_sim_1_0", "call_sim_1_1", "call_sim_1_2"]
    # All three ran at the same time: the latest start precedes the earliest end.
    assert max(s for s, _ in intervals) < min(e for _, e in intervals)
    assert elapsed < 1.4  # sequential would take 1.5 s of tool time alone


async def test_parallel_async_tool_calls_overlap(make_project, sim, engine_factory) -> None:
    await _overlap(make_project, sim, engine_factory, "wait_async")


async def test_parallel_sync_tool_calls_overlap_on_threads(make_project, sim, engine_factory) -> None:
    await _overlap(make_project, sim, engine_factory, "wait_sync")


async def test_unserialisable_tool_result_is_a_tool_error(make_project, sim, engine_factory) -> None:
    project = make_project(
        [{"name": "loop", "tools": ["circ.make"]}],
        tools={
            "circ": '''
            def make(n: int) -> dict:
                """Return a circular structure."""
                d = {"n": n}
                d["self"] = d
                return d
        '''
        },
    )
    sim.set_rules(
        [
            _final_after("make"),
            Rule(reply=ToolCallsReply(calls=[ToolCall(name="make", arguments={"n": 1})])),
        ]
    )
    result = await engine_factory(project).run(RunRequest.new("loop", "go"))
    assert result.status is RunStatus.COMPLETED
    assert "not JSON-serialisable" in sim.requests[1].body["messages"][-1]["content"]
