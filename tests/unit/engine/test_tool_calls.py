"""Tool calls: only the agent's own tools, parallel calls overlap, failures go to the model."""

from __future__ import annotations

import json
import time

from app.contracts import RunRequest, RunStatus, SpanKind
from app.engine.testing import Reply, ScriptedLLM, tool_call
from tests.unit.engine.conftest import of_kind, tool_messages

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


def _calling(*calls) -> ScriptedLLM:
    """One message with `calls`, then a final answer after the tool results."""
    return ScriptedLLM([Reply(tool_calls=list(calls)), "done"])


async def test_undeclared_tool_is_refused_and_never_called(make_project, engine_for, tmp_path) -> None:
    project = make_project(
        [{"name": "shop", "tools": ["shop.lookup"]}, {"name": "admin", "tools": ["admin.wipe"]}], tools=TOOLS
    )
    target = tmp_path / "victim.txt"
    llm = _calling(tool_call("wipe", {"path": str(target)}))
    spans = []
    result = await engine_for(project, llm).run(RunRequest.new("shop", "go"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED and llm.remaining == 0
    assert not target.exists()
    message = llm.requests[1].messages[-1]
    assert message["role"] == "tool" and "unknown tool 'wipe'" in message["content"]
    assert "lookup" in message["content"]  # the model learns what it may call
    tool_span = next(s for s in spans if s.kind is SpanKind.TOOL_CALL)
    assert tool_span.attributes["error.category"] == "tool_error"
    # The tools offered to the model were only the agent's own.
    offered = [t["function"]["name"] for t in llm.requests[0].tools or []]
    assert offered == ["lookup"]


async def test_tool_exception_becomes_a_tool_error_message(make_project, engine_for) -> None:
    project = make_project([{"name": "shop", "tools": ["shop.explode"]}], tools=TOOLS)
    llm = _calling(tool_call("explode", {"reason": "bad disk"}))
    result = await engine_for(project, llm).run(RunRequest.new("shop", "go"))
    assert result.status is RunStatus.COMPLETED
    content = json.loads(llm.requests[1].messages[-1]["content"])
    assert content == {"error": "RuntimeError: boom: bad disk"}


async def test_invalid_arguments_are_refused_before_the_call(make_project, engine_for) -> None:
    project = make_project([{"name": "shop", "tools": ["shop.lookup"]}], tools=TOOLS)
    llm = _calling(tool_call("lookup", {"item": 3}))
    await engine_for(project, llm).run(RunRequest.new("shop", "go"))
    assert "invalid arguments for 'lookup'" in llm.requests[1].messages[-1]["content"]


async def test_arguments_that_are_not_json_are_refused(make_project, engine_for) -> None:
    project = make_project([{"name": "shop", "tools": ["shop.lookup"]}], tools=TOOLS)
    llm = _calling(tool_call("lookup", '{"item": '))
    result = await engine_for(project, llm).run(RunRequest.new("shop", "go"))
    assert result.status is RunStatus.COMPLETED
    assert "arguments of 'lookup' are not valid JSON" in llm.requests[1].messages[-1]["content"]


async def test_model_cannot_override_the_context(make_project, engine_for) -> None:
    project = make_project([{"name": "shop", "tools": ["shop.lookup"]}], tools=TOOLS)
    llm = _calling(tool_call("lookup", '{"item": "x", "context": {"tenant": "evil"}}'))
    await engine_for(project, llm).run(RunRequest.new("shop", "go", tenant="acme"))
    content = json.loads(llm.requests[1].messages[-1]["content"])
    assert content == {"item": "x", "tenant": "acme"}


async def test_tool_results_answer_their_calls_in_the_model_format(make_project, engine_for) -> None:
    project = make_project([{"name": "shop", "tools": ["shop.lookup"]}], tools=TOOLS)
    llm = _calling(tool_call("lookup", {"item": "a"}, id="call_a"), tool_call("lookup", {"item": "b"}, id="call_b"))
    await engine_for(project, llm).run(RunRequest.new("shop", "go", tenant="acme"))
    assistant, *answers = llm.requests[1].messages[-3:]
    assert assistant["role"] == "assistant"
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_a", "call_b"]
    assert [(m["tool_call_id"], m["name"], json.loads(m["content"])["item"]) for m in answers] == [
        ("call_a", "lookup", "a"),
        ("call_b", "lookup", "b"),
    ]


async def _overlap(make_project, engine_for, tool: str) -> None:
    project = make_project([{"name": "shop", "tools": [f"shop.{tool}"]}], tools=TOOLS)
    llm = _calling(*(tool_call(tool, {"n": i}) for i in range(3)))
    started = time.monotonic()
    result = await engine_for(project, llm).run(RunRequest.new("shop", "go"))
    elapsed = time.monotonic() - started
    assert result.status is RunStatus.COMPLETED and result.usage.tool_calls == 3
    answers = tool_messages(llm.requests[1].messages)
    intervals = [json.loads(m["content"]) for m in answers]
    assert [m["tool_call_id"] for m in answers] == ["call_1_0", "call_1_1", "call_1_2"]
    # All three ran at the same time: the latest start precedes the earliest end.
    assert max(s for s, _ in intervals) < min(e for _, e in intervals)
    assert elapsed < 1.4  # sequential would take 1.5 s of tool time alone


async def test_parallel_async_tool_calls_overlap(make_project, engine_for) -> None:
    await _overlap(make_project, engine_for, "wait_async")


async def test_parallel_sync_tool_calls_overlap_on_threads(make_project, engine_for) -> None:
    await _overlap(make_project, engine_for, "wait_sync")


async def test_unserialisable_tool_result_is_a_tool_error(make_project, engine_for) -> None:
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
    llm = _calling(tool_call("make", {"n": 1}))
    spans = []
    result = await engine_for(project, llm).run(RunRequest.new("loop", "go"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED
    assert "not JSON-serialisable" in llm.requests[1].messages[-1]["content"]
    assert of_kind(spans, SpanKind.TOOL_CALL)[0].attributes["error.category"] == "tool_error"
