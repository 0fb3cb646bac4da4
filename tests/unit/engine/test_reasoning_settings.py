"""An agent's reasoning settings reach the model request, and each path sends what the provider takes."""

from __future__ import annotations

import pytest

from app.contracts import RunRequest, RunStatus
from app.engine.model import LLMRequest, reasoning_effort_of
from app.engine.openai_compat.wire import request_body
from app.engine.testing import ScriptedLLM

USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("setting", "sent"),
    [(None, None), ("auto", None), ("off", "none"), ("minimal", "minimal"), ("high", "high"), ("xhigh", "xhigh")],
)
def test_an_agents_setting_is_openais_effort(setting: str | None, sent: str | None) -> None:
    assert reasoning_effort_of(setting) == sent


@pytest.mark.parametrize("name", ["o4-mini", "gpt-5", "azure/gpt-5.1", "sim-model", "deepseek-reasoner"])
def test_the_direct_path_sends_the_effort(name: str) -> None:
    body = request_body(LLMRequest(model=name, messages=USER, reasoning_effort="low", reasoning_budget=2048), name)
    assert body["reasoning_effort"] == "low"
    assert "reasoning_budget" not in body and "thinking" not in body  # OpenAI has no budget parameter


@pytest.mark.parametrize("name", ["gpt-4o", "gpt-4o-mini", "gpt-5-chat-latest", "gpt-3.5-turbo"])
def test_a_model_that_refuses_the_effort_gets_the_request_without_it(name: str) -> None:
    assert "reasoning_effort" not in request_body(LLMRequest(model=name, messages=USER, reasoning_effort="low"), name)


@pytest.mark.parametrize(
    ("keys", "effort", "budget"),
    [
        ({"reasoning_effort": "high"}, "high", None),
        ({"reasoning_effort": "off"}, "none", None),
        ({"reasoning_effort": "auto", "reasoning_budget": 4096}, None, 4096),
        ({"reasoning": False}, "none", None),  # Connic's deprecated flag
        ({"reasoning": True}, None, None),
        ({}, None, None),
    ],
)
async def test_the_engine_sends_the_agents_reasoning_settings(
    make_project, engine_for, keys: dict[str, object], effort: str | None, budget: int | None
) -> None:
    project = make_project([{"name": "thinker", **keys}])
    assert project.warnings == ()  # an llm agent's reasoning keys are no longer "not passed"
    llm = ScriptedLLM(["done"])
    result = await engine_for(project, llm).run(RunRequest.new("thinker", "think"))
    assert result.status is RunStatus.COMPLETED
    assert [(r.reasoning_effort, r.reasoning_budget) for r in llm.requests] == [(effort, budget)]


def test_reasoning_on_a_tool_agent_is_a_warning(make_project) -> None:
    project = make_project(
        [{"name": "stamp", "type": "tool", "tool_name": "fmt.stamp", "reasoning_effort": "high"}],
        tools={"fmt": "def stamp(payload: dict) -> dict:\n    return payload\n"},
    )
    assert [w.message for w in project.warnings] == ["is not used by tool agents; ignored"]
