"""Sequential chains and tool agents, executed in-process."""

from __future__ import annotations

import json

from app.contracts import RunRequest, RunStatus, SpanKind
from app.devstack.llm_sim import JsonReply, Match, Rule, TextReply
from app.engine import next_stage_input

TOOLS = {
    "fmt": '''
        def stamp(payload: dict, context: dict) -> dict:
            """Tool agent: stamp the payload with the run's identity."""
            return {"stamped": payload, "agent": context["agent_name"], "run_id": context["run_id"]}

        def flaky(payload: dict) -> dict:
            """Fails: the tool agent's failure ends the run."""
            raise ValueError("upstream said no")
    '''
}


async def test_chain_passes_each_output_to_the_next_stage(make_project, sim, engine_factory) -> None:
    project = make_project(
        [
            {"name": "extract", "model": "openai/extractor"},
            {"name": "stamp", "type": "tool", "tool_name": "fmt.stamp"},
            {"name": "summarise", "model": "openai/summariser"},
            {"name": "pipeline", "type": "sequential", "agents": ["extract", "stamp", "summarise"]},
        ],
        tools=TOOLS,
    )
    sim.set_rules(
        [
            Rule(match=Match(model="extractor"), reply=JsonReply(data={"vendor": "ACME", "total": 12})),
            Rule(match=Match(model="summariser"), reply=TextReply(text="ACME owes 12")),
        ]
    )
    spans = []
    result = await engine_factory(project).run(RunRequest.new("pipeline", "invoice text"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED and result.output == "ACME owes 12"
    assert sim.requests[0].body["messages"][1]["content"] == "invoice text"
    stage3_input = json.loads(sim.requests[1].body["messages"][1]["content"])
    assert stage3_input == {
        "stamped": {"message": '{"vendor": "ACME", "total": 12}'},
        "agent": "stamp",
        "run_id": result.run_id,
    }
    assert result.usage.llm_calls == 2 and result.usage.tool_calls == 1
    steps = [s.name for s in spans if s.kind is SpanKind.PIPELINE_STEP]
    assert steps == ["stage 0 extract", "stage 1 stamp", "stage 2 summarise"]


async def test_failed_stage_fails_the_chain_with_its_category(make_project, sim, engine_factory) -> None:
    project = make_project(
        [
            {"name": "bad", "type": "tool", "tool_name": "fmt.flaky", "retry_options": {"attempts": 1}},
            {"name": "after", "model": "openai/never"},
            {"name": "chain", "type": "sequential", "agents": ["bad", "after"]},
        ],
        tools=TOOLS,
    )
    result = await engine_factory(project).run(RunRequest.new("chain", {"a": 1}))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category.value == "tool_error"
    assert "upstream said no" in result.error.message
    assert sim.calls_total == 0


def test_stage_input_rule() -> None:
    assert next_stage_input({"a": 1}) == {"a": 1}
    assert next_stage_input("text") == {"message": "text"}
    assert next_stage_input([1, 2]) == {"message": [1, 2]}


async def test_stage_timeout_ends_the_chain_with_partial_output(make_project, sim, engine_factory) -> None:
    project = make_project(
        [
            {"name": "fast", "model": "openai/fast"},
            {"name": "slow", "model": "openai/slow", "timeout": 5},
            {"name": "chain", "type": "sequential", "agents": ["fast", "slow"], "timeout": 60},
        ]
    )
    sim.set_rules(
        [
            Rule(match=Match(model="fast"), reply=TextReply(text="stage one done")),
            Rule(match=Match(model="slow"), reply=TextReply(text="too late", delay_ms=30_000)),
        ]
    )
    spans = []
    result = await engine_factory(project).run(RunRequest.new("chain", "go"), on_span=spans.append)
    assert result.status is RunStatus.TIMEOUT and result.partial is True
    assert result.error is not None and "stage 1 (slow) did not finish within 5s" in result.error.message
    assert result.output["stage_outputs"] == ["stage one done"]
    step = next(s for s in spans if s.kind is SpanKind.PIPELINE_STEP and s.name == "stage 1 slow")
    assert step.attributes["error.category"] == "timeout"


async def test_chain_budget_bounds_its_stages(make_project, sim, engine_factory) -> None:
    project = make_project(
        [
            {"name": "one", "model": "openai/one"},
            {"name": "two", "model": "openai/two", "max_iterations": 1},
            {"name": "chain", "type": "sequential", "agents": ["one", "two"], "budget": {"max_tokens": 60}},
        ]
    )
    sim.set_rules([Rule(reply=TextReply(text="word " * 30))])
    result = await engine_factory(project).run(RunRequest.new("chain", "go"))
    # Stage one spends ~40 tokens; stage two's prompt would pass the chain's 60 tokens.
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category.value == "budget_exceeded"
    assert sim.calls_by_model == {"one": 1}
    assert "max_tokens 60" in result.error.message


async def test_max_iterations_counts_a_stage_own_calls(make_project, sim, engine_factory) -> None:
    project = make_project(
        [
            {"name": "one", "model": "openai/one"},
            {"name": "two", "model": "openai/two", "max_iterations": 1},
            {"name": "chain", "type": "sequential", "agents": ["one", "two"]},
        ]
    )
    sim.set_rules([Rule(reply=TextReply(text="fine"))])
    result = await engine_factory(project).run(RunRequest.new("chain", "go"))
    assert result.status is RunStatus.COMPLETED
    assert sim.calls_by_model == {"one": 1, "two": 1}


async def test_tool_agent_output_is_plain_json(make_project, sim, engine_factory) -> None:
    project = make_project(
        [{"name": "money", "type": "tool", "tool_name": "m.total"}],
        tools={
            "m": '''
            from decimal import Decimal

            def total(payload: dict) -> dict:
                """Sum the amounts exactly."""
                return {"total": sum(Decimal(a) for a in payload["amounts"])}
        '''
        },
    )
    result = await engine_factory(project).run(RunRequest.new("money", {"amounts": ["0.10", "0.20"]}))
    assert result.status is RunStatus.COMPLETED
    assert result.output == {"total": "0.30"}
    assert json.loads(result.model_dump_json())["output"] == {"total": "0.30"}
