"""Middleware around a run: context values reach tool conditions, a failing before() fails
the run naming it, cleanup always runs and never changes the run, run_after_on_block."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

from app.contracts import RunRequest, RunStatus
from app.engine import Engine
from app.engine.testing import ScriptedLLM
from app.project import Project, load_project

MIDDLEWARE = """
CALLS = []


def before(content, context):
    text = content["parts"][0]["text"]
    if "explode" in text:
        raise ValueError("cannot parse the ticket")
    context["tier"] = "gold" if "gold" in text else "basic"
    return content


def after(response, context):
    CALLS.append(("after", response))
    return response


def cleanup(run, context):
    CALLS.append(("cleanup", run["status"], run["error"]))
    raise RuntimeError("cleanup bug")  # logged, never changes the run
"""


def project(tmp_path: Path, **agent_keys: Any) -> Project:
    root = tmp_path / "project"
    for folder in ("agents", "tools", "middleware"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "tools" / "crm.py").write_text("def refund(order: str) -> str:\n    return 'ok'\n")
    (root / "middleware" / "desk.py").write_text(textwrap.dedent(MIDDLEWARE))
    agent = {"version": "1.0", "name": "desk", "description": "helps", "model": "openai/sim", "system_prompt": "Help.",
             "tools": [{"crm.refund": "context.tier == 'gold'"}], **agent_keys}  # fmt: skip
    (root / "agents" / "desk.yaml").write_text(yaml.safe_dump(agent))
    return load_project(root)


async def run(loaded: Project, llm: ScriptedLLM, text: str) -> Any:
    engine = Engine(loaded, llm=llm)
    try:
        return await engine.run(RunRequest.new("desk", text))
    finally:
        await engine.aclose()


def calls(loaded: Project) -> list[Any]:
    after = loaded.middleware["desk"].after
    assert after is not None
    recorded: list[Any] = after.__globals__["CALLS"]
    return recorded


async def test_a_value_before_puts_in_the_context_decides_a_tool_condition(tmp_path: Path) -> None:
    loaded = project(tmp_path)
    gold, basic = ScriptedLLM(["ok"]), ScriptedLLM(["ok"])
    await run(loaded, gold, "gold customer here")
    await run(loaded, basic, "basic customer here")
    assert [t["function"]["name"] for t in gold.requests[0].tools or []] == ["refund"]
    assert basic.requests[0].tools is None
    assert calls(loaded)[-2:] == [("after", "ok"), ("cleanup", "completed", None)]


async def test_a_failing_before_fails_the_run_naming_it_and_cleanup_still_runs(tmp_path: Path) -> None:
    loaded = project(tmp_path)
    llm = ScriptedLLM([])
    result = await run(loaded, llm, "please explode")
    assert result.status is RunStatus.FAILED and result.error.category == "bad_input"
    assert result.error.message == "middleware before() raised ValueError: cannot parse the ticket"
    assert llm.requests == []
    assert calls(loaded)[-1] == ("cleanup", "failed", "middleware before() raised ValueError: cannot parse the ticket")


async def test_after_runs_for_a_blocked_input_unless_run_after_on_block_is_false(tmp_path: Path) -> None:
    guard = {"input": [{"type": "regex", "config": {"patterns": ["secret"]}}]}
    runs_after = project(tmp_path / "a", guardrails=guard)
    result = await run(runs_after, ScriptedLLM([]), "the secret plan")
    assert result.status is RunStatus.BLOCKED
    assert ("after", None) in calls(runs_after)
    skips_after = project(tmp_path / "b", guardrails={**guard, "run_after_on_block": False})
    await run(skips_after, ScriptedLLM([]), "the secret plan")
    assert [c for c in calls(skips_after) if c[0] == "after"] == []
    assert calls(skips_after)[-1][:2] == ("cleanup", "blocked")
