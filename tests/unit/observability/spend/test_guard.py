"""The guard at a run's door: over a limit, no run (and no LLM call); otherwise the run, counted at once."""

from __future__ import annotations

from typing import Any

import pytest

from app.contracts import PipelineContext, RunRequest, RunResult, RunStatus
from app.contracts.errors import ErrorCategory
from app.observability.spend.guard import SpendGuard
from app.observability.spend.ledger import PROJECT, SpendLedger
from app.observability.spend.limits import SpendLimits

from .samples import Clock, at, limit, result


class CostlyRunner:
    """Every run costs $0.40; records what it was asked to run and with which options."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.runs: list[tuple[str, dict[str, Any]]] = []

    async def run(self, request: RunRequest, **options: Any) -> RunResult:
        self.runs.append((request.run_id, options))
        return result(0.4, self.clock(), agent=request.agent, run_id=request.run_id, tenant=request.tenant)


def guarded(clock: Clock) -> tuple[SpendGuard, CostlyRunner, SpendLedger]:
    ledger = SpendLedger(keep_days=0, scopes={"agent"}, now=clock)
    runner = CostlyRunner(clock)
    limits = SpendLimits([limit("agent", "day", 1.0, name="a")], ledger)
    return SpendGuard(runner.run, limits, on_result=ledger.add, now=clock), runner, ledger


async def test_runs_go_through_until_the_limit_then_end_budget_exceeded_without_running() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    guard, runner, ledger = guarded(clock)
    statuses = []
    for i in range(5):
        outcome = await guard.run(RunRequest.new("a", {"message": str(i)}), on_span=None, trace_context=None)
        statuses.append(outcome.status)
    assert statuses == [RunStatus.COMPLETED] * 3 + [RunStatus.FAILED] * 2  # $1.20 after the third
    assert len(runner.runs) == 3 and guard.refused == 2
    assert runner.runs[0][1] == {"on_span": None, "trace_context": None}  # options passed on as given
    assert ledger.spent(PROJECT, "day", "2026-05-04") == pytest.approx(1.2)  # counted as they ended

    refused = await guard.run(RunRequest.new("a", {"message": "late"}, tenant="acme"))
    assert refused.error is not None and refused.error.category is ErrorCategory.BUDGET_EXCEEDED
    assert "agent 'a' spent $1.20 of its $1.00 daily limit (2026-05-04 UTC)" in refused.error.message
    assert refused.usage.llm_calls == 0 and refused.tenant == "acme"

    other = await guard.run(RunRequest.new("b", {"message": "x"}))
    assert other.status is RunStatus.COMPLETED
    clock.now = at("2026-05-05 00:00")
    assert (await guard.run(RunRequest.new("a", {"message": "tomorrow"}))).status is RunStatus.COMPLETED


async def test_a_stage_is_refused_when_its_pipeline_is_over_its_limit() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    ledger = SpendLedger(keep_days=0, scopes={"agent"}, now=clock)
    runner = CostlyRunner(clock)
    guard = SpendGuard(
        runner.run, SpendLimits([limit("agent", "day", 0.5, name="p")], ledger), on_result=ledger.add, now=clock
    )
    ctx = PipelineContext(pipeline="p", stage=0, root_run_id="root", parent_run_id="root")
    stage = RunRequest.new("a", {"message": "x"}, pipeline=ctx)
    ledger.add(result(0.6, clock(), agent="a", pipeline=ctx))
    assert (await guard.run(stage)).status is RunStatus.FAILED
    assert runner.runs == []
