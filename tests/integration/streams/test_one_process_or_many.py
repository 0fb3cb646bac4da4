"""A run behaves the same in one process (`Engine.run`, a chain's stages in-process) and
across workers (each stage its own run on its own topic), as docs/engine.md promises.

Each test sends the same requests down both paths, with the same run ids, and compares
what a user sees: status, error category, output, usage, the result's `pipeline`, and
which model calls were made.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from app.contracts import RunRequest, RunResult, RunStatus
from app.devstack.llm_sim import LLMSimulator, Match, Rule, TextReply
from app.engine import Engine, EngineSettings
from app.engine.stage import stage_run_id
from app.project.project import Project
from app.streams import ResultWatcher, Submitter, TopicNames
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

PRICE = 0.001  # per token, in and out: a 40-token stage costs about $0.04
STAMP_TOOL = '''
    def stamp(payload: dict, context: dict) -> dict:
        """What a stage's tool is told about its run."""
        return {
            "run_id": context["run_id"],
            "agent": context["agent_name"],
            "stage": context["pipeline"]["stage"],
            "root": context["pipeline"]["root_run_id"],
            "parent": context["pipeline"]["parent_run_id"],
        }
'''


def _project(root: Path) -> Project:
    (root / "tools").mkdir(parents=True)
    (root / "tools" / "ctx.py").write_text(textwrap.dedent(STAMP_TOOL))
    wordy = llm_agent(model="openai/one")
    second = llm_agent(model="openai/two", max_iterations=1)
    return write_project(
        root,
        {
            "one": wordy,
            "two": second,
            "echo": llm_agent(),
            "stamp": {"type": "tool", "tool_name": "ctx.stamp", "retry_options": {"attempts": 1}},
            "slow": llm_agent(model="openai/slow", timeout=30),
            "by-tokens": {"type": "sequential", "agents": ["one", "two"], "budget": {"max_tokens": 60}},
            "by-cost": {"type": "sequential", "agents": ["one", "two"], "budget": {"max_cost_usd": 0.06}},
            "roomy": {"type": "sequential", "agents": ["one", "two"], "budget": {"max_tokens": 10_000}},
            "stamped": {"type": "sequential", "agents": ["echo", "stamp"]},
            "timed": {"type": "sequential", "agents": ["echo", "slow"], "timeout": 5},
        },
        config={
            "models": {
                m: {"input_cost_per_token": PRICE, "output_cost_per_token": PRICE} for m in ("openai/one", "openai/two")
            }
        },
    )


RULES = [
    Rule(match=Match(model="one"), reply=TextReply(text="word " * 30)),
    Rule(match=Match(model="two"), reply=TextReply(text="short")),
    Rule(match=Match(model="slow"), reply=TextReply(text="too late", delay_ms=30_000)),
]


async def _both_ways(
    project: Project,
    sim: LLMSimulator,
    make_worker: WorkerFactory,
    bootstrap: str,
    names: TopicNames,
    requests: list[RunRequest],
    raw: dict[str, bytes] | None = None,
) -> tuple[dict[str, RunResult], dict[str, RunResult], dict[str, int], dict[str, int]]:
    """Results by run id (and model calls by model) in one process, then over Kafka.

    `raw` sends those requests' records as these bytes instead (what a foreign producer writes).
    """
    engine = Engine(project, settings=EngineSettings(llm_base_url=sim.base_url))
    try:
        here = {r.run_id: await engine.run(r) for r in requests}
    finally:
        await engine.aclose()
    calls_here = sim.calls_by_model
    sim.reset()
    sim.set_rules(RULES)
    agents = tuple(sorted({r.agent for r in requests}))
    await make_worker(project, sim.base_url, agents=agents).start()
    async with ResultWatcher(bootstrap, names) as watcher, Submitter(bootstrap, project, names) as submitter:
        for request in requests:
            if raw and request.run_id in raw:
                await submitter.send_raw(names.request(request.agent), raw[request.run_id], request.run_id.encode())
            else:
                await submitter.submit(request)
        there = await watcher.wait_for([r.run_id for r in requests], timeout=90)
    assert there.keys() == here.keys(), "a run got no result over Kafka"
    return here, there, calls_here, sim.calls_by_model


def _seen(result: RunResult) -> dict[str, Any]:
    """What a user compares between two results of the same request."""
    pipeline = result.pipeline.model_dump(exclude={"started_at"}) if result.pipeline else None
    return {
        "status": result.status,
        "category": result.error.category if result.error else None,
        "output": result.output,
        "tokens": result.usage.total_tokens,
        "llm_calls": result.usage.llm_calls,
        "pipeline": pipeline,
    }


async def test_a_pipeline_budget_bounds_its_stages_on_both_paths(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = _project(tmp_path)
    # Stage one spends ~40 tokens (~$0.04); stage two's prompt would pass 60 tokens / $0.06.
    requests = [RunRequest.new(p, "go") for p in ("by-tokens", "by-cost", "roomy")]
    async with LLMSimulator(RULES) as sim:
        here, there, calls_here, calls_there = await _both_ways(
            project, sim, make_worker, kafka_bootstrap, names, requests
        )

    for request in requests[:2]:
        assert _seen(here[request.run_id]) == _seen(there[request.run_id]), request.agent
        assert here[request.run_id].status == RunStatus.FAILED
        assert here[request.run_id].error.category == "budget_exceeded"  # type: ignore[union-attr]
    roomy = requests[2].run_id
    assert here[roomy].status == there[roomy].status == RunStatus.COMPLETED
    assert _seen(here[roomy]) == _seen(there[roomy])
    assert calls_here == calls_there == {"one": 3, "two": 1}  # the budgets stopped both before model two


async def test_a_stage_tool_sees_the_same_context_on_both_paths(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = _project(tmp_path)
    request = RunRequest.new("stamped", {"message": "hi"})
    async with LLMSimulator(RULES) as sim:
        here, there, _, _ = await _both_ways(project, sim, make_worker, kafka_bootstrap, names, [request])

    expected = {
        "run_id": request.run_id,  # the pipeline's own run id, the one its caller got back
        "agent": "stamp",
        "stage": 1,
        "root": request.run_id,
        "parent": stage_run_id(request.run_id, 0),
    }
    assert here[request.run_id].output == there[request.run_id].output == expected


async def test_a_non_object_input_is_wrapped_on_both_paths(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = _project(tmp_path)
    request = RunRequest.new("echo", "hello")
    record = json.loads(request.model_dump_json())
    record["input"] = "hello"  # as a producer that knows nothing of the wrapping writes it
    async with LLMSimulator(RULES) as sim:
        here, there, _, _ = await _both_ways(
            project,
            sim,
            make_worker,
            kafka_bootstrap,
            names,
            [request],
            raw={request.run_id: json.dumps(record).encode()},
        )

    assert request.input == {"message": "hello"}
    assert _seen(here[request.run_id]) == _seen(there[request.run_id])
    assert there[request.run_id].status == RunStatus.COMPLETED  # not dead-lettered
    assert there[request.run_id].output == "Simulated reply to: hello"


async def test_a_pipeline_result_names_the_stage_that_ended_it_on_both_paths(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = _project(tmp_path)
    completed, failed = RunRequest.new("roomy", "go"), RunRequest.new("by-tokens", "go")
    async with LLMSimulator(RULES) as sim:
        here, there, _, _ = await _both_ways(project, sim, make_worker, kafka_bootstrap, names, [completed, failed])

    for request, ended_at_stage in ((completed, 1), (failed, 1)):
        local, remote = here[request.run_id], there[request.run_id]
        assert local.pipeline is not None and remote.pipeline is not None
        assert local.pipeline.model_dump(exclude={"started_at"}) == remote.pipeline.model_dump(exclude={"started_at"})
        assert (local.pipeline.pipeline, local.pipeline.stage) == (request.agent, ended_at_stage)
        assert local.pipeline.root_run_id == request.run_id
        assert local.pipeline.parent_run_id == stage_run_id(request.run_id, ended_at_stage)
        assert local.pipeline.started_at is not None and remote.pipeline.started_at is not None


async def test_a_pipeline_timeout_spans_its_stages_on_both_paths(
    tmp_path, kafka_bootstrap: str, make_worker: WorkerFactory, names: TopicNames
) -> None:
    """The pipeline's 5 s cut its second stage short, though that stage allows itself 30 s."""
    project = _project(tmp_path)
    request = RunRequest.new("timed", "go")
    async with LLMSimulator(RULES) as sim:
        here, there, _, _ = await _both_ways(project, sim, make_worker, kafka_bootstrap, names, [request])

    local, remote = here[request.run_id], there[request.run_id]
    for result in (local, remote):
        assert result.status == RunStatus.TIMEOUT
        assert result.error is not None and result.error.category == "timeout"
        assert result.pipeline is not None and result.pipeline.stage == 1
        assert 4.5 <= result.duration_ms / 1000 < 25  # the pipeline's deadline, not the stage's 30 s
