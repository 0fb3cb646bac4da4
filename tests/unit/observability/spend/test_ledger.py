"""The ledger: each run's cost counted once, in its UTC day and month, for its subjects."""

from __future__ import annotations

from datetime import date

from app.contracts import PipelineContext
from app.observability.spend.ledger import PROJECT, SpendLedger

from .samples import Clock, at, result


def ledger(clock: Clock, keep_days: int = 0) -> SpendLedger:
    return SpendLedger(keep_days=keep_days, scopes={"agent", "tenant"}, now=clock)


def test_a_run_counts_for_the_project_its_agent_and_its_tenant_in_its_day_and_month() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    spend = ledger(clock)
    spend.add(result(0.25, at("2026-05-04 09:00"), agent="a", tenant="acme"))
    spend.add(result(0.5, at("2026-05-04 10:00"), agent="b", tenant="acme"))

    assert spend.spent(PROJECT, "day", "2026-05-04") == 0.75
    assert spend.spent(("agent", "a"), "day", "2026-05-04") == 0.25
    assert spend.spent(("tenant", "acme"), "month", "2026-05") == 0.75
    assert spend.names("agent", "day", "2026-05-04") == ["a", "b"]


def test_the_same_run_read_back_from_the_topic_is_not_counted_again() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    spend = ledger(clock)
    mine = result(0.25, at("2026-05-04 09:00"), run_id="r1")
    assert spend.add(mine)  # counted when this worker produced it
    assert not spend.add(mine)  # and not when the feed reads it back
    assert spend.spent(PROJECT, "day", "2026-05-04") == 0.25


def test_a_pipeline_is_not_counted_on_top_of_its_stages_and_its_stages_count_for_it() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    spend = ledger(clock)
    started = at("2026-05-04 09:00")
    for stage, agent in enumerate(["extract", "validate"]):
        ctx = PipelineContext(pipeline="invoices", stage=stage, root_run_id="root", parent_run_id="root")
        spend.add(result(0.5, started, agent=agent, run_id=f"stage-{stage}", pipeline=ctx))
    whole = PipelineContext(pipeline="invoices", stage=1, root_run_id="root")
    assert not spend.add(result(1.0, started, agent="invoices", run_id="root", pipeline=whole))

    assert spend.spent(PROJECT, "day", "2026-05-04") == 1.0  # not 2.0
    assert spend.spent(("agent", "invoices"), "day", "2026-05-04") == 1.0
    assert spend.spent(("agent", "extract"), "day", "2026-05-04") == 0.5


def test_an_unpriced_run_adds_nothing_and_periods_that_turned_are_dropped() -> None:
    clock = Clock(at("2026-05-31 23:00"))
    spend = ledger(clock)
    spend.add(result(None, at("2026-05-31 22:00")))
    spend.add(result(2.0, at("2026-05-31 22:30")))
    assert spend.spent(PROJECT, "day", "2026-05-31") == 2.0

    clock.now = at("2026-06-01 00:30")  # a new day and a new month
    spend.add(result(1.0, at("2026-06-01 00:10")))
    assert spend.spent(PROJECT, "day", "2026-06-01") == 1.0
    assert spend.spent(PROJECT, "month", "2026-06") == 1.0
    assert spend.spent(PROJECT, "day", "2026-05-31") == 0.0  # keep_days=0: yesterday is gone
    assert spend.spent(PROJECT, "month", "2026-05") == 0.0


def test_past_days_are_kept_for_the_spike_window_and_history_starts_at_the_first_run() -> None:
    clock = Clock(at("2026-05-10 12:00"))
    spend = ledger(clock, keep_days=5)
    assert spend.history_start is None
    spend.add(result(1.0, at("2026-05-03 12:00")))  # older than the window: not kept per day
    spend.add(result(1.0, at("2026-05-06 12:00")))
    assert spend.history_start == date(2026, 5, 3)
    assert spend.project_day(date(2026, 5, 6)) == 1.0
    assert spend.project_day(date(2026, 5, 3)) == 0.0
    assert spend.spent(PROJECT, "month", "2026-05") == 2.0

    spend.note_history_before(date(2026, 4, 1))
    assert spend.history_start == date(2026, 4, 1)


def test_only_scopes_with_limits_are_summed_per_name() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    spend = SpendLedger(keep_days=0, scopes={"agent"}, now=clock)
    spend.add(result(1.0, at("2026-05-04 09:00"), tenant="acme"))
    assert spend.names("tenant", "day", "2026-05-04") == []
    assert spend.spent(("agent", "a"), "day", "2026-05-04") == 1.0
