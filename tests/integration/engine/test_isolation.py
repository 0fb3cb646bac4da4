"""`isolation: process`: tool calls in a limited child that is killed when it misbehaves.

Real processes, so integration; the model is the in-process fake."""

from __future__ import annotations

import json
import os
import time

from app.contracts import RunRequest, RunStatus, SpanKind
from app.engine.testing import Reply, ScriptedLLM, tool_call

TOOLS = {
    "risky": '''
        import os

        def spin(n: int) -> int:
            """Burn CPU forever."""
            x = 0
            while True:
                x += 1

        def hog(mb: int) -> int:
            """Allocate a lot of memory."""
            blocks = [bytearray(1024 * 1024) for _ in range(mb)]
            return len(blocks)

        def whoami(note: str, context: dict) -> dict:
            """Report the process and the tenant."""
            return {"pid": os.getpid(), "tenant": context["tenant"], "note": note}
    '''
}


def _calling(tool: str, arguments: dict) -> ScriptedLLM:
    """Call `tool` once, then answer "recovered" whatever the tool did."""
    return ScriptedLLM([Reply(tool_calls=[tool_call(tool, arguments)]), "recovered"])


def _agent(**extra: object) -> dict:
    return {"name": "r", "tools": ["risky.spin", "risky.hog", "risky.whoami"], "isolation": "process", **extra}


async def test_tool_runs_in_another_process_with_its_context(make_project, engine_for) -> None:
    project = make_project([_agent()], tools=TOOLS)
    llm = _calling("whoami", {"note": "hi"})
    result = await engine_for(project, llm).run(RunRequest.new("r", "go", tenant="acme"))
    assert result.status is RunStatus.COMPLETED
    answer = json.loads(llm.requests[1].messages[-1]["content"])
    assert answer["tenant"] == "acme" and answer["note"] == "hi"
    assert answer["pid"] != os.getpid()


async def test_runaway_cpu_loop_is_killed_on_tool_timeout(make_project, engine_for) -> None:
    project = make_project([_agent(tool_timeout=1.0)], tools=TOOLS)
    llm = _calling("spin", {"n": 1})
    spans = []
    started = time.monotonic()
    result = await engine_for(project, llm).run(RunRequest.new("r", "go"), on_span=spans.append)
    assert time.monotonic() - started < 6
    assert result.status is RunStatus.COMPLETED and result.output == "recovered"
    span = next(s for s in spans if s.kind is SpanKind.TOOL_CALL)
    assert span.attributes["error.category"] == "tool_timeout"
    assert "did not finish within 1s" in llm.requests[1].messages[-1]["content"]


async def test_cpu_time_limit_kills_a_loop_without_tool_timeout(make_project, engine_for) -> None:
    project = make_project([_agent()], tools=TOOLS)
    llm = _calling("spin", {"n": 1})
    started = time.monotonic()
    result = await engine_for(project, llm, process_cpu_seconds=1).run(RunRequest.new("r", "go"))
    assert time.monotonic() - started < 8
    assert result.status is RunStatus.COMPLETED
    assert "CPU time limit" in llm.requests[1].messages[-1]["content"]


async def test_memory_hog_hits_its_limit_and_the_run_goes_on(make_project, engine_for) -> None:
    project = make_project([_agent(tool_timeout=20)], tools=TOOLS)
    llm = _calling("hog", {"mb": 4096})
    spans = []
    result = await engine_for(project, llm, process_memory_mb=256).run(RunRequest.new("r", "go"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED and result.output == "recovered"
    assert "memory limit" in llm.requests[1].messages[-1]["content"]
    span = next(s for s in spans if s.kind is SpanKind.TOOL_CALL)
    assert span.attributes["error.category"] == "tool_error"
