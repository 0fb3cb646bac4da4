from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.contracts import PipelineContext, RunRequest, RunResult, RunStatus, Usage
from app.contracts.runs import utc_now
from app.engine.budget import Budget
from app.engine.stage import carried_budget
from app.project import load_project
from app.project.models import BudgetSpec
from app.streams.assignor import agent_of
from app.streams.bindings import bindings_for
from app.streams.naming import TopicNames
from app.streams.pipeline import first_stage, next_stage, pipeline_result, stage_run_id
from app.streams.topic_plan import plan_topics

ROOT = Path(__file__).resolve().parents[3]


def _result(request: RunRequest, status: RunStatus, output: object, tokens: int) -> RunResult:
    now = utc_now()
    return RunResult(
        run_id=request.run_id,
        agent=request.agent,
        status=status,
        output=output,
        usage=Usage(total_tokens=tokens),
        started_at=now,
        ended_at=now + timedelta(seconds=1),
        duration_ms=1000,
        pipeline=request.pipeline,
    )


def test_stages_chain_ids_inputs_and_usage() -> None:
    project = load_project(ROOT)
    pipeline = project.agents["invoice-pipeline"]
    root = RunRequest.new("invoice-pipeline", {"files": []}, tenant="acme")
    stage0 = first_stage(pipeline, root)  # type: ignore[arg-type]
    assert stage0.run_id == stage_run_id(root.run_id, 0) and stage0.agent == "invoice-extractor"
    assert stage0.pipeline.root_run_id == root.run_id and stage0.deadline is not None  # type: ignore[union-attr]
    stage1 = next_stage(pipeline, stage0, _result(stage0, RunStatus.COMPLETED, {"vendor": "A"}, 10))  # type: ignore[arg-type]
    assert stage1 is not None and stage1.input == {"vendor": "A"} and stage1.tenant == "acme"
    assert stage1.pipeline.parent_run_id == stage0.run_id  # type: ignore[union-attr]
    stage2 = next_stage(pipeline, stage1, _result(stage1, RunStatus.COMPLETED, "text", 5))  # type: ignore[arg-type]
    assert stage2 is not None and stage2.input == {"message": "text"}
    last = _result(stage2, RunStatus.COMPLETED, {"record": 1}, 1)
    assert next_stage(pipeline, stage2, last) is None  # type: ignore[arg-type]
    whole = pipeline_result(stage2, last)
    assert (whole.run_id, whole.agent, whole.output) == (root.run_id, "invoice-pipeline", {"record": 1})
    assert whole.usage.total_tokens == 16


def test_a_failed_stage_ends_the_pipeline() -> None:
    project = load_project(ROOT)
    pipeline = project.agents["invoice-pipeline"]
    stage0 = first_stage(pipeline, RunRequest.new("invoice-pipeline", {}))  # type: ignore[arg-type]
    failed = _result(stage0, RunStatus.FAILED, None, 3)
    assert next_stage(pipeline, stage0, failed) is None  # type: ignore[arg-type]
    assert pipeline_result(stage0, failed).status == RunStatus.FAILED


def test_the_pipeline_budget_travels_with_its_stages_and_shrinks_with_their_usage() -> None:
    project = load_project(ROOT)
    pipeline = project.agents["invoice-pipeline"].model_copy(
        update={"budget": BudgetSpec(max_tokens=100, max_cost_usd=0.5)}
    )
    stage0 = first_stage(pipeline, RunRequest.new("invoice-pipeline", {}))  # type: ignore[arg-type]
    assert carried_budget(stage0.pipeline) == Budget(max_tokens=100, max_cost_usd=0.5)
    spent = _result(stage0, RunStatus.COMPLETED, {"vendor": "A"}, 70)
    spent.usage.cost_usd = 0.2
    stage1 = next_stage(pipeline, stage0, spent)  # type: ignore[arg-type]
    assert stage1 is not None and stage1.pipeline is not None
    assert stage1.pipeline.budget == stage0.pipeline.budget  # type: ignore[union-attr]
    left = carried_budget(stage1.pipeline)
    assert left is not None and left.max_tokens == 30 and left.max_cost_usd == pytest.approx(0.3)
    overspent = next_stage(pipeline, stage1, _result(stage1, RunStatus.COMPLETED, {}, 50))  # type: ignore[arg-type]
    assert carried_budget(overspent.pipeline).max_tokens == 0  # type: ignore[union-attr]
    # A stage of unknown price: the rest of the cost limit cannot be enforced, the token limit still is.
    unpriced = _result(stage1, RunStatus.COMPLETED, {}, 10)
    unpriced.usage.cost_usd = None
    blind = carried_budget(next_stage(pipeline, stage1, unpriced).pipeline)  # type: ignore[arg-type, union-attr]
    assert blind == Budget(max_tokens=20, max_cost_usd=None)


def test_a_pipeline_without_budget_carries_none() -> None:
    project = load_project(ROOT)
    stage0 = first_stage(project.agents["invoice-pipeline"], RunRequest.new("invoice-pipeline", {}))  # type: ignore[arg-type]
    assert stage0.pipeline is not None and stage0.pipeline.budget is None
    assert carried_budget(stage0.pipeline) is None and carried_budget(None) is None


def test_older_stage_records_without_a_budget_still_read() -> None:
    old = {"pipeline": "p", "stage": 1, "root_run_id": "r", "parent_run_id": "s", "usage": {"total_tokens": 3}}
    assert PipelineContext.model_validate(old).budget is None


def test_an_agent_topic_has_the_spec_partitions_whatever_its_cap() -> None:
    """The cap is shared among workers (shares.py), not tied to partitions: a deployment
    may change it later without a topic to recreate."""
    project = load_project(ROOT)
    names = TopicNames("x.")
    plan = {t.name: t for t in plan_topics(project, names)}
    assert project.agents["invoice-extractor"].max_concurrent_runs == 1
    assert plan["x.agent.resilient-agent.requests"].partitions == 12
    assert plan["x.agent.invoice-extractor.requests"].partitions == 12
    assert plan["x.pipeline.invoice-pipeline.0.invoice-extractor"].partitions == 12  # same as its agent's
    assert plan["x.agent.invoice-pipeline.requests"].partitions == 12
    assert plan["x.runs.results"].configs["cleanup.policy"] == "compact"


def test_a_worker_of_an_agent_consumes_every_topic_of_that_agent() -> None:
    project = load_project(ROOT)
    names = TopicNames()
    topics = {b.topic for b in bindings_for(project, names, ["invoice-extractor"])}
    assert topics == {"agent.invoice-extractor.requests", "pipeline.invoice-pipeline.0.invoice-extractor"}
    assert {agent_of(t) for t in topics} == {"invoice-extractor"}
