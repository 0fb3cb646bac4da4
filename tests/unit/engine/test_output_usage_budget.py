"""Output schema re-asks, usage and cost accounting, budgets that stop a run in time."""

from __future__ import annotations

import json

import pytest

from app.contracts import RunRequest, RunStatus, SpanKind
from app.contracts.errors import ErrorCategory
from app.engine import LLMRequest, LLMUsage
from app.engine.pricing import ModelPrice
from app.engine.testing import FunctionLLM, Reply, ScriptedLLM, tool_call
from tests.unit.engine.conftest import of_kind

INVOICE = {
    "type": "object",
    "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
    "required": ["vendor", "total"],
}


async def test_schema_violation_is_sent_back_then_fixed(make_project, engine_for) -> None:
    project = make_project(
        [{"name": "x", "output_schema": "invoice", "retry_options": {"attempts": 3}}], schemas={"invoice": INVOICE}
    )
    llm = ScriptedLLM(['{"vendor": "ACME"}', '```json\n{"vendor": "ACME", "total": 12.5}\n```'])
    spans = []
    result = await engine_for(project, llm).run(RunRequest.new("x", "extract"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED
    assert result.output == {"vendor": "ACME", "total": 12.5}
    assert len(llm.requests) == 2
    reask = llm.requests[1].messages[-1]
    assert reask["role"] == "user" and "'total' is a required property" in reask["content"]
    # The rejected answer stays in the conversation, so the model sees what it wrote.
    assert llm.requests[1].messages[-2] == {"role": "assistant", "content": '{"vendor": "ACME"}'}
    # The schema reaches the model in the system prompt.
    assert '"required": ["vendor", "total"]' in llm.requests[0].messages[0]["content"]
    validations = of_kind(spans, SpanKind.OUTPUT_VALIDATION)
    assert [v.status.value for v in validations] == ["error", "ok"]


async def test_schema_still_violated_after_all_attempts_fails(make_project, engine_for) -> None:
    project = make_project(
        [{"name": "x", "output_schema": "invoice", "retry_options": {"attempts": 2}}], schemas={"invoice": INVOICE}
    )
    llm = FunctionLLM(lambda request: json.dumps({"vendor": "ACME", "total": "twelve"}))
    result = await engine_for(project, llm).run(RunRequest.new("x", "extract"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.OUTPUT_VALIDATION
    assert "at total" in result.error.message
    assert len(llm.requests) == 2  # the first answer plus one re-ask (attempts: 2)


PRICED = {"models": {"openai/sim-model": {"input_cost_per_token": 0.001, "output_cost_per_token": 0.01}}}
ECHO = {"t": 'def echo(text: str) -> str:\n    """Echo."""\n    return text\n'}


async def test_usage_and_cost_are_summed_over_calls(make_project, engine_for) -> None:
    project = make_project([{"name": "x", "tools": ["t.echo"]}], tools=ECHO, config=PRICED)
    llm = ScriptedLLM(
        [
            Reply(
                tool_calls=[tool_call("echo", {"text": "a"}), tool_call("echo", {"text": "b"})],
                usage=LLMUsage(prompt_tokens=30, completion_tokens=12),
            ),
            Reply(text="all done now", usage=LLMUsage(prompt_tokens=70, completion_tokens=4)),
        ]
    )
    spans = []
    result = await engine_for(project, llm).run(RunRequest.new("x", "go"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED
    calls = of_kind(spans, SpanKind.LLM_CALL)
    assert [(c.attributes["llm.prompt_tokens"], c.attributes["llm.completion_tokens"]) for c in calls] == [
        (30, 12),
        (70, 4),
    ]
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 16, 116)
    assert usage.llm_calls == 2 and usage.tool_calls == 2
    assert usage.cost_usd == pytest.approx(100 * 0.001 + 16 * 0.01)
    assert [c.attributes["cost_usd"] for c in calls] == pytest.approx([0.03 + 0.12, 0.07 + 0.04])
    run = next(s for s in spans if s.kind is SpanKind.RUN)
    assert run.attributes["cost_usd"] == pytest.approx(usage.cost_usd)


async def test_the_project_price_beats_the_cost_the_client_reported(make_project, engine_for) -> None:
    project = make_project([{"name": "x"}], config=PRICED)
    llm = ScriptedLLM([Reply(text="hi", usage=LLMUsage(prompt_tokens=10, completion_tokens=1, cost_usd=99.0))])
    result = await engine_for(project, llm).run(RunRequest.new("x", "go"))
    assert result.usage.cost_usd == pytest.approx(10 * 0.001 + 1 * 0.01)


async def test_the_cost_the_client_reported_is_used_without_a_project_price(make_project, engine_for) -> None:
    project = make_project([{"name": "x"}])
    llm = ScriptedLLM(["one", "two"], price=ModelPrice(0.5, 1.0))
    first = await engine_for(project, llm).run(RunRequest.new("x", "go"))
    assert first.usage.cost_usd == pytest.approx(20 * 0.5 + 10 * 1.0)  # 2 prompt messages, one answer


async def test_unknown_price_is_none_not_a_guess(make_project, engine_for) -> None:
    project = make_project([{"name": "x", "model": "openai/no-such-model-xyz"}])
    result = await engine_for(project, ScriptedLLM(["hi"])).run(RunRequest.new("x", "go"))
    assert result.status is RunStatus.COMPLETED
    assert result.usage.total_tokens == 30 and result.usage.cost_usd is None


def _looping(request: LLMRequest) -> Reply:
    """A model that never stops calling its tool."""
    return Reply(tool_calls=[tool_call("echo", {"text": "more " * 40})])


async def test_token_budget_stops_before_the_call_that_would_pass_it(make_project, engine_for) -> None:
    project = make_project([{"name": "x", "tools": ["t.echo"], "budget": {"max_tokens": 250}}], tools=ECHO)
    llm = FunctionLLM(_looping)
    result = await engine_for(project, llm).run(RunRequest.new("x", "go"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.BUDGET_EXCEEDED
    assert result.usage.total_tokens <= 250  # stopped before, not after, passing the budget
    assert len(llm.requests) == result.usage.llm_calls >= 1
    assert "would pass max_tokens 250" in result.error.message


async def test_a_completion_past_the_token_budget_ends_the_run(make_project, engine_for) -> None:
    project = make_project([{"name": "x", "budget": {"max_tokens": 250}}])
    llm = ScriptedLLM([Reply(text="long", usage=LLMUsage(prompt_tokens=20, completion_tokens=400))])
    result = await engine_for(project, llm).run(RunRequest.new("x", "go"))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category is ErrorCategory.BUDGET_EXCEEDED
    assert "420 tokens used, over max_tokens 250" in result.error.message


async def test_cost_budget_stops_the_run(make_project, engine_for) -> None:
    project = make_project(
        [{"name": "x", "tools": ["t.echo"], "budget": {"max_cost_usd": 0.5}}], tools=ECHO, config=PRICED
    )
    llm = FunctionLLM(_looping)
    result = await engine_for(project, llm).run(RunRequest.new("x", "go"))
    assert result.error is not None and result.error.category is ErrorCategory.BUDGET_EXCEEDED
    assert result.usage.cost_usd is not None and result.usage.cost_usd <= 0.5
    assert len(llm.requests) == result.usage.llm_calls >= 1
    assert "the next LLM call" in result.error.message and "would pass max_cost_usd $0.50" in result.error.message


async def test_max_iterations_caps_llm_calls(make_project, engine_for) -> None:
    project = make_project([{"name": "x", "tools": ["t.echo"], "max_iterations": 3}], tools=ECHO)
    llm = FunctionLLM(_looping)
    result = await engine_for(project, llm).run(RunRequest.new("x", "go"))
    assert result.error is not None and result.error.category is ErrorCategory.BUDGET_EXCEEDED
    assert len(llm.requests) == 3 and result.usage.llm_calls == 3
