"""Output schema re-asks, usage and cost accounting, budgets that stop a run in time."""

from __future__ import annotations

import pytest

from app.contracts import RunRequest, RunStatus, SpanKind
from app.contracts.errors import ErrorCategory
from app.devstack.llm_sim import JsonReply, Match, Rule, SequenceReply, TextReply, ToolCall, ToolCallsReply

INVOICE = {
    "type": "object",
    "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
    "required": ["vendor", "total"],
}


async def test_schema_violation_is_sent_back_then_fixed(make_project, sim, engine_factory) -> None:
    project = make_project(
        [{"name": "x", "output_schema": "invoice", "retry_options": {"attempts": 3}}], schemas={"invoice": INVOICE}
    )
    sim.set_rules(
        [
            Rule(
                reply=SequenceReply(
                    steps=[
                        TextReply(text='{"vendor": "ACME"}'),
                        TextReply(text='```json\n{"vendor": "ACME", "total": 12.5}\n```'),
                    ]
                )
            )
        ]
    )
    spans = []
    result = await engine_factory(project).run(RunRequest.new("x", "extract"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED
    assert result.output == {"vendor": "ACME", "total": 12.5}
    assert sim.calls_total == 2
    reask = sim.requests[1].body["messages"][-1]
    assert reask["role"] == "user" and "'total' is a required property" in reask["content"]
    # The schema reaches the model in the system prompt.
    assert '"required": ["vendor", "total"]' in sim.requests[0].body["messages"][0]["content"]
    validations = [s for s in spans if s.kind is SpanKind.OUTPUT_VALIDATION]
    assert [v.status.value for v in validations] == ["error", "ok"]


async def test_schema_still_violated_after_all_attempts_fails(make_project, sim, engine_factory) -> None:
    project = make_project(
        [{"name": "x", "output_schema": "invoice", "retry_options": {"attempts": 2}}], schemas={"invoice": INVOICE}
    )
    sim.set_rules([Rule(reply=JsonReply(data={"vendor": "ACME", "total": "twelve"}))])
    result = await engine_factory(project).run(RunRequest.new("x", "extract"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.OUTPUT_VALIDATION
    assert "at total" in result.error.message
    assert sim.calls_total == 2  # the first answer plus one re-ask (attempts: 2)


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


LOOP_RULES = [Rule(reply=ToolCallsReply(calls=[ToolCall(name="echo", arguments={"text": "more " * 40})]))]
ECHO = {"t": 'def echo(text: str) -> str:\n    """Echo."""\n    return text\n'}


async def test_token_budget_stops_before_the_call_that_would_pass_it(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "x", "tools": ["t.echo"], "budget": {"max_tokens": 250}}], tools=ECHO)
    sim.set_rules(LOOP_RULES)
    result = await engine_factory(project).run(RunRequest.new("x", "go"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.BUDGET_EXCEEDED
    assert result.usage.total_tokens <= 250  # stopped before, not after, passing the budget
    assert sim.calls_total == result.usage.llm_calls >= 1


async def test_cost_budget_stops_the_run(make_project, sim, engine_factory) -> None:
    project = make_project(
        [{"name": "x", "tools": ["t.echo"], "budget": {"max_cost_usd": 0.5}}], tools=ECHO, config=PRICED
    )
    sim.set_rules(LOOP_RULES)
    result = await engine_factory(project).run(RunRequest.new("x", "go"))
    assert result.error is not None and result.error.category is ErrorCategory.BUDGET_EXCEEDED
    assert result.usage.cost_usd is not None and result.usage.cost_usd <= 0.5
    assert sim.calls_total == result.usage.llm_calls >= 1


async def test_max_iterations_caps_llm_calls(make_project, sim, engine_factory) -> None:
    project = make_project([{"name": "x", "tools": ["t.echo"], "max_iterations": 3}], tools=ECHO)
    sim.set_rules(LOOP_RULES)
    result = await engine_factory(project).run(RunRequest.new("x", "go"))
    assert result.error is not None and result.error.category is ErrorCategory.BUDGET_EXCEEDED
    assert sim.calls_total == 3
