"""Sequential chains and tool agents, executed in-process."""

from __future__ import annotations

import json

from app.contracts import RunRequest, RunStatus, SpanKind
from app.engine import FakeClock, next_stage_input
from app.engine.testing import Reply, ScriptedLLM
from tests.unit.engine.conftest import of_kind

TOOLS = {
    "fmt": '''
        calls = []

        def stamp(payload: dict, context: dict) -> dict:
            """Tool agent: stamp the payload with the run's identity."""
            return {"stamped": payload, "agent": context["agent_name"], "run_id": context["run_id"]}

        def flaky(payload: dict) -> dict:
            """Fails: the tool agent's failure ends the run."""
            raise ValueError("upstream said no")

        def once_flaky(payload: dict) -> dict:
            """Fails the first time, then answers."""
            calls.append(payload)
            if len(calls) == 1:
                raise ConnectionError("try again")
            return {"attempts": len(calls)}
    '''
}


async def test_chain_passes_each_output_to_the_next_stage(make_project, engine_for) -> None:
    project = make_project(
        [
            {"name": "extract", "model": "openai/extractor"},
            {"name": "stamp", "type": "tool", "tool_name": "fmt.stamp"},
            {"name": "summarise", "model": "openai/summariser"},
            {"name": "pipeline", "type": "sequential", "agents": ["extract", "stamp", "summarise"]},
        ],
        tools=TOOLS,
    )
    llm = ScriptedLLM(
        {"openai/extractor": [json.dumps({"vendor": "ACME", "total": 12})], "openai/summariser": ["ACME owes 12"]}
    )
    spans = []
    result = await engine_for(project, llm).run(RunRequest.new("pipeline", "invoice text"), on_span=spans.append)
    assert result.status is RunStatus.COMPLETED and result.output == "ACME owes 12"
    assert llm.models == ["openai/extractor", "openai/summariser"]
    assert llm.requests[0].messages[1]["content"] == "invoice text"
    stage3_input = json.loads(llm.requests[1].messages[1]["content"])
    assert stage3_input == {
        "stamped": {"message": '{"vendor": "ACME", "total": 12}'},
        "agent": "stamp",
        "run_id": result.run_id,
    }
    assert result.usage.llm_calls == 2 and result.usage.tool_calls == 1
    # Usage adds up over the stages: 2 prompt messages and one answer each, 10 tokens apiece.
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (40, 20)
    steps = [s.name for s in of_kind(spans, SpanKind.PIPELINE_STEP)]
    assert steps == ["stage 0 extract", "stage 1 stamp", "stage 2 summarise"]
    # A stage never sees another stage's conversation.
    assert [m["role"] for m in llm.requests[1].messages] == ["system", "user"]


async def test_failed_stage_fails_the_chain_with_its_category(make_project, engine_for) -> None:
    project = make_project(
        [
            {"name": "bad", "type": "tool", "tool_name": "fmt.flaky", "retry_options": {"attempts": 1}},
            {"name": "after", "model": "openai/never"},
            {"name": "chain", "type": "sequential", "agents": ["bad", "after"]},
        ],
        tools=TOOLS,
    )
    llm = ScriptedLLM([])
    result = await engine_for(project, llm).run(RunRequest.new("chain", {"a": 1}))
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category.value == "tool_error"
    assert "upstream said no" in result.error.message
    assert llm.requests == []


async def test_a_tool_agent_is_retried_with_the_shared_retry_waits(make_project, engine_for) -> None:
    project = make_project(
        [
            {
                "name": "t",
                "type": "tool",
                "tool_name": "fmt.once_flaky",
                "retry_options": {"attempts": 2, "initial_delay": 3},
            }
        ],
        tools=TOOLS,
    )
    clock = FakeClock()
    spans = []
    result = await engine_for(project, ScriptedLLM([]), clock=clock).run(
        RunRequest.new("t", {"a": 1}), on_span=spans.append
    )
    assert result.status is RunStatus.COMPLETED and result.output == {"attempts": 2}
    assert clock.sleeps == [3]
    (wait,) = of_kind(spans, SpanKind.RETRY_WAIT)
    assert (wait.attributes["wait_seconds"], wait.attributes["reason"], wait.attributes["after_attempt"]) == (
        3,
        "tool_error",
        1,
    )
    assert [s.attributes["attempt"] for s in of_kind(spans, SpanKind.TOOL_CALL)] == [1, 2]


def test_stage_input_rule() -> None:
    assert next_stage_input({"a": 1}) == {"a": 1}
    assert next_stage_input("text") == {"message": "text"}
    assert next_stage_input([1, 2]) == {"message": [1, 2]}


async def test_stage_timeout_ends_the_chain_with_partial_output(make_project, engine_for) -> None:
    project = make_project(
        [
            {"name": "fast", "model": "openai/fast"},
            {"name": "slow", "model": "openai/slow", "timeout": 5},
            {"name": "chain", "type": "sequential", "agents": ["fast", "slow"], "timeout": 60},
        ]
    )
    clock = FakeClock()
    llm = ScriptedLLM(
        {"openai/fast": ["stage one done"], "openai/slow": [Reply(text="too late", latency=30)]}, clock=clock
    )
    spans = []
    started = clock.monotonic()
    result = await engine_for(project, llm, clock=clock).run(RunRequest.new("chain", "go"), on_span=spans.append)
    assert result.status is RunStatus.TIMEOUT and result.partial is True
    assert result.error is not None and "stage 1 (slow) did not finish within 5s" in result.error.message
    assert result.output["stage_outputs"] == ["stage one done"]
    step = next(s for s in of_kind(spans, SpanKind.PIPELINE_STEP) if s.name == "stage 1 slow")
    assert step.attributes["error.category"] == "timeout"
    assert clock.monotonic() - started == 5.0


async def test_chain_budget_bounds_its_stages(make_project, engine_for) -> None:
    project = make_project(
        [
            {"name": "one", "model": "openai/one"},
            {"name": "two", "model": "openai/two", "max_iterations": 1},
            {"name": "chain", "type": "sequential", "agents": ["one", "two"], "budget": {"max_tokens": 60}},
        ]
    )
    llm = ScriptedLLM({"openai/one": ["word " * 30], "openai/two": ["never"]}, tokens_per_message=15)
    result = await engine_for(project, llm).run(RunRequest.new("chain", "go"))
    # Stage one spends 45 tokens; stage two's prompt (~60 estimated) would pass the chain's 60.
    assert result.status is RunStatus.FAILED
    assert result.error is not None and result.error.category.value == "budget_exceeded"
    assert llm.models == ["openai/one"]
    assert "max_tokens 60" in result.error.message
    assert result.usage.total_tokens == 45


async def test_max_iterations_counts_a_stage_own_calls(make_project, engine_for) -> None:
    project = make_project(
        [
            {"name": "one", "model": "openai/one"},
            {"name": "two", "model": "openai/two", "max_iterations": 1},
            {"name": "chain", "type": "sequential", "agents": ["one", "two"]},
        ]
    )
    llm = ScriptedLLM({"openai/one": ["fine"], "openai/two": ["fine"]})
    result = await engine_for(project, llm).run(RunRequest.new("chain", "go"))
    assert result.status is RunStatus.COMPLETED
    assert llm.models == ["openai/one", "openai/two"]


async def test_tool_agent_output_is_plain_json(make_project, engine_for) -> None:
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
    result = await engine_for(project, ScriptedLLM([])).run(RunRequest.new("money", {"amounts": ["0.10", "0.20"]}))
    assert result.status is RunStatus.COMPLETED
    assert result.output == {"total": "0.30"}
    assert json.loads(result.model_dump_json())["output"] == {"total": "0.30"}
