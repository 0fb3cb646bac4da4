"""Limits: a reached limit refuses new runs in its scope, and only there, until the period turns."""

from __future__ import annotations

from app.observability.spend.ledger import SpendLedger
from app.observability.spend.limits import SpendLimits
from app.project.config import SpendLimit

from .samples import Clock, at, limit, result


def limits_of(clock: Clock, *items: SpendLimit) -> SpendLimits:
    ledger = SpendLedger(keep_days=0, scopes={item.scope for item in items}, now=clock)
    return SpendLimits(items, ledger)


def test_a_daily_agent_limit_refuses_that_agent_once_reached_and_the_message_says_what_and_when() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    limits = limits_of(clock, limit("agent", "day", 1.0, name="a"))
    for _ in range(9):
        limits.ledger.add(result(0.1, at("2026-05-04 10:00"), agent="a"))
    assert limits.refusal(["a"], "default", clock()) is None  # $0.90 of $1.00

    limits.ledger.add(result(0.1, at("2026-05-04 10:00"), agent="a"))  # 10 × 0.1 is 0.9999999999999999
    refusal = limits.refusal(["a"], "default", clock())
    assert refusal == (
        "spend limit reached: agent 'a' spent $1.00 of its $1.00 daily limit (2026-05-04 UTC); "
        "new runs are refused until the day turns (UTC)"
    )
    assert limits.refusal(["b"], "default", clock()) is None  # another agent is not in its scope


def test_a_reached_limit_lets_runs_in_again_when_the_period_turns() -> None:
    clock = Clock(at("2026-05-04 23:59"))
    limits = limits_of(clock, limit("project", "day", 1.0), limit("tenant", "month", 5.0, name="acme"))
    limits.ledger.add(result(1.5, at("2026-05-04 23:00"), tenant="acme"))
    assert limits.refusal(["a"], "other", clock()) is not None  # the project's daily limit

    clock.now = at("2026-05-05 00:00")
    assert limits.refusal(["a"], "acme", clock()) is None  # a new day; the month has room
    limits.ledger.add(result(3.6, at("2026-05-05 00:00"), tenant="acme"))
    refusal = limits.refusal(["a"], "acme", clock())
    assert refusal is not None and "project" in refusal  # $3.60 today, over $1.00
    clock.now = at("2026-05-06 00:00")
    refusal = limits.refusal(["a"], "acme", clock())
    assert refusal is not None and "tenant 'acme' spent $5.10 of its $5.00 monthly limit (2026-05 UTC)" in refusal
    assert limits.refusal(["a"], "other", clock()) is None
    clock.now = at("2026-06-01 00:00")
    assert limits.refusal(["a"], "acme", clock()) is None


def test_a_limit_without_a_name_holds_for_each_agent_on_its_own() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    limits = limits_of(clock, limit("agent", "day", 1.0))
    limits.ledger.add(result(1.0, at("2026-05-04 10:00"), agent="a"))
    limits.ledger.add(result(0.5, at("2026-05-04 10:00"), agent="b"))
    refusal = limits.refusal(["a"], "default", clock())
    assert (
        refusal is not None and "agent 'a' spent $1.00 of its $1.00 daily limit (2026-05-04 UTC, each agent)" in refusal
    )
    assert limits.refusal(["b"], "default", clock()) is None
    assert [(s.subject, s.spent_usd) for s in limits.states(clock())] == [("a", 1.0), ("b", 0.5)]


def test_a_pipeline_stage_is_in_the_scope_of_its_pipeline() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    limits = limits_of(clock, limit("agent", "day", 1.0, name="invoices"))
    limits.ledger.add(result(1.0, at("2026-05-04 10:00"), agent="invoices"))
    assert limits.refusal(["extract", "invoices"], "default", clock()) is not None
    assert limits.refusal(["extract"], "default", clock()) is None
