"""context_compression: older turns summarised on a context-length refusal or past a prompt budget."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

from app.contracts import RunRequest, RunStatus, SpanEvent, SpanKind
from app.contracts.errors import ContextLengthError
from app.engine import Engine
from app.engine.compression import SUMMARY_PREFIX
from app.engine.testing import Reply, ScriptedLLM, tool_call
from app.project import lint_project, load_project

AGENT = "openai/agent-model"
SUMMARIZER = "openai/summarizer"


def project(tmp_path: Path, compression: dict[str, Any]) -> Path:
    root = tmp_path / "project"
    (root / "agents").mkdir(parents=True)
    (root / "tools").mkdir()
    (root / "tools" / "stock.py").write_text(
        textwrap.dedent('''
        def count(sku: str) -> dict:
            """Units in stock."""
            return {"sku": sku, "units": 7, "notes": "x" * 9000}
        ''')
    )
    agent = {"version": "1.0", "name": "clerk", "description": "counts", "model": AGENT, "system_prompt": "Count.",
             "tools": ["stock.count"], "context_compression": {"model": SUMMARIZER, **compression}}  # fmt: skip
    (root / "agents" / "clerk.yaml").write_text(yaml.safe_dump(agent))
    return root


def counting(n: int) -> list[Reply]:
    return [Reply(tool_calls=[tool_call("count", {"sku": f"s{i}"})]) for i in range(n)]


async def run(root: Path, llm: ScriptedLLM) -> tuple[Any, list[SpanEvent]]:
    engine = Engine(load_project(root), llm=llm)
    spans: list[SpanEvent] = []
    try:
        return await engine.run(RunRequest.new("clerk", "count s0 to s2"), on_span=spans.append), spans
    finally:
        await engine.aclose()


async def test_a_context_length_refusal_compresses_and_tries_the_step_again(tmp_path: Path) -> None:
    llm = ScriptedLLM(
        {AGENT: [*counting(3), ContextLengthError("prompt too long"), "21 units"], SUMMARIZER: ["s0-s2: 7 each"]}
    )
    result, spans = await run(project(tmp_path, {"keep_recent_messages": 2}), llm)
    assert result.status is RunStatus.COMPLETED and result.output == "21 units"
    last = llm.requests[-1].messages
    assert [m["role"] for m in last] == ["system", "user", "assistant", "tool"]
    assert last[1]["content"] == SUMMARY_PREFIX + "s0-s2: 7 each"
    summary_request = next(r for r in llm.requests if r.model == SUMMARIZER)
    assert (
        "called count" in summary_request.messages[1]["content"] and "…(cut)" in summary_request.messages[1]["content"]
    )
    (compressing,) = [s for s in spans if s.name == "context_compression"]
    assert compressing.kind is SpanKind.LLM_CALL and compressing.attributes["model"] == SUMMARIZER
    assert result.usage.llm_calls == 5  # four agent calls that answered, one summary


async def test_past_max_prompt_tokens_the_conversation_is_compressed_before_the_next_call(tmp_path: Path) -> None:
    llm = ScriptedLLM({AGENT: [*counting(3), "done"], SUMMARIZER: ["earlier counts", "more counts"]})
    result, _ = await run(project(tmp_path, {"keep_recent_messages": 2, "max_prompt_tokens": 45}), llm)
    assert result.status is RunStatus.COMPLETED
    # 10 tokens a message: the third call's prompt (6 messages, 60 tokens) passed the budget of 45,
    # so before the fourth the first turns became one summary: system, summary and the 2 kept.
    assert [len(r.messages) for r in llm.requests if r.model == AGENT] == [2, 4, 6, 4]
    assert llm.models.count(SUMMARIZER) == 1


async def test_without_compression_a_refusal_fails_the_run(tmp_path: Path) -> None:
    llm = ScriptedLLM({AGENT: [ContextLengthError("prompt too long")]})
    result, _ = await run(project(tmp_path, {"enabled": False}), llm)
    assert result.status is RunStatus.FAILED and result.error.category == "context_length"


def test_session_history_compaction_is_a_warning(tmp_path: Path) -> None:
    root = project(tmp_path, {"session_history": {"interval": 4}})
    assert [str(p) for p in lint_project(root).problems] == [
        "agents/clerk.yaml:3:3 context_compression.session_history: stored session-history compaction is not run "
        "by Ferry yet — a session keeps its last 40 messages"
    ]
