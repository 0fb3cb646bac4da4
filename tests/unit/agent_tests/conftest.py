"""A Connic-format fixture project, and a fake model that plays its agents' part."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.engine.model import LLMRequest
from app.engine.testing import FunctionLLM, Outcome, Reply, tool_call

FIXTURE = Path(__file__).parent / "fixtures" / "connic_project"


@pytest.fixture
def connic_project(tmp_path: Path) -> Path:
    """A private copy of the fixture project (tests may add suites and cassettes to it)."""
    target = tmp_path / "project"
    shutil.copytree(FIXTURE, target)
    return target


def calculator_answer(request: LLMRequest, *, wrong_sum: bool = False) -> Outcome:
    """What a good model does with the fixture's agents: call the tool, then answer with its result."""
    system, user = str(request.messages[0]["content"]), str(request.messages[1]["content"])
    results = [m for m in request.messages if m.get("role") == "tool"]
    if "summary key" in system:
        return json.dumps({"summary": user[:12]})
    if "trigger_agent" in system:
        if results:
            return "dispatched"
        numbers = json.loads(user)
        return Reply(
            tool_calls=[
                tool_call("trigger_agent", {"agent_name": "summarizer", "payload": numbers["text"]}),
                tool_call(
                    "trigger_agent",
                    {"agent_name": "doubler", "payload": {"n": numbers["n"]}, "wait_for_response": False},
                ),
            ]
        )
    if not results:
        if "team" in user:
            return Reply(tool_calls=[tool_call("send", {"message": user})])
        if "note" in user:
            return Reply(tool_calls=[tool_call("read", {"file_name": "note.txt"})])
        numbers = json.loads(user)
        name = "multiply" if numbers.get("op") == "multiply" else "add"
        return Reply(tool_calls=[tool_call(name, {"a": numbers["a"], "b": numbers["b"]})])
    last = results[-1]
    value = json.loads(last["content"])
    if last["name"] == "add":
        return json.dumps({"sum": value + 1 if wrong_sum else value})
    if last["name"] == "multiply":
        return json.dumps({"product": value})
    return f"done: {last['content']}"


@pytest.fixture
def model() -> FunctionLLM:
    return FunctionLLM(calculator_answer)
