"""Usage and cost through litellm: the provider's token counts, the project's prices, litellm's
price map for a known model, None for an unknown one. Budgets and re-asks are tested on the
in-process fake (tests/unit/engine/test_output_usage_budget.py)."""

from __future__ import annotations

import pytest

from app.contracts import RunRequest, RunStatus, SpanKind
from app.devstack.llm_sim import Match, Rule, TextReply, ToolCall, ToolCallsReply

PRICED = {"models": {"openai/sim-model": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.01}}}


async def test_usage_and_cost_are_summed_over_calls(make_project, sim, engine_factory) -> None:
    project = make_project(
        [{"name": "x", "tools": ["t.echo"]}],
        tools={"t": 'def echo(text: str) -> str:\n    """Echo."""\n    return text\n'},
        config=PRICED,
    )
    sim.set_rules(
        [
            Rule(match=Match(has_tool_result="echo"), reply=TextReply(text="all done now")),
            Rule(
                reply=ToolCallsReply(
                    calls=[
                        ToolCall(name="echo", arguments={"text": "a"}),
                        ToolCall(name="echo", arguments={"text": "b"}),
                    ]
                )
            ),
        ]
    )
    spans = []
    result = await engine_factory(project).run(RunRequest.new("x", "go"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED
    calls = [s for s in spans if s.kind is SpanKind.LLM_CALL]
    assert len(calls) == 2
    prompt = sum(c.attributes["llm.prompt_tokens"] for c in calls)
    completion = sum(c.attributes["llm.completion_tokens"] for c in calls)
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, completion)
    assert usage.total_tokens == prompt + completion > 0
    assert usage.llm_calls == 2 and usage.tool_calls == 2
    assert usage.cost_usd == pytest.approx(prompt * 0.001 + completion * 0.01)
    assert sum(c.attributes["cost_usd"] for c in calls) == pytest.approx(usage.cost_usd)
    run = next(s for s in spans if s.kind is SpanKind.RUN)
    assert run.attributes["cost_usd"] == pytest.approx(usage.cost_usd)


async def test_unknown_price_is_none_not_a_guess(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "x", "model": "openai/no-such-model-xyz"}])
    sim.set_rules([Rule(reply=TextReply(text="hi"))])
    result = await engine_factory(project).run(RunRequest.new("x", "go"))
    assert result.status is RunStatus.COMPLETED
    assert result.usage.total_tokens > 0 and result.usage.cost_usd is None


async def test_known_model_is_priced_from_litellm_map(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "x", "model": "openai/gpt-4o-mini"}])
    sim.set_rules([Rule(reply=TextReply(text="hi there"))])
    result = await engine_factory(project).run(RunRequest.new("x", "go"))
    assert result.usage.cost_usd is not None and result.usage.cost_usd > 0
