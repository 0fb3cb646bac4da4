"""Alerts: each threshold once per limit, subject and period; a spike against the trailing average."""

from __future__ import annotations

from datetime import timedelta

from app.contracts import AlertKind
from app.observability.spend.alerts import AlertRules
from app.observability.spend.ledger import SpendLedger
from app.observability.spend.limits import SpendLimits
from app.project.config import SpendAlerts, SpendLimit

from .samples import Clock, at, limit, result


def rules_of(clock: Clock, *items: SpendLimit, settings: SpendAlerts | None = None) -> AlertRules:
    settings = settings or SpendAlerts()
    ledger = SpendLedger(keep_days=settings.spike_window_days, scopes={i.scope for i in items}, now=clock)
    return AlertRules(SpendLimits(items, ledger), settings)


def send(rules: AlertRules, clock: Clock, sent: set[str]) -> list[str]:
    """One judging, as the publisher does it: the due alerts are sent and remembered."""
    due = rules.due(clock(), sent)
    sent.update(alert.alert_id for alert in due)
    return [alert.alert_id for alert in due]


def test_each_threshold_is_crossed_once_per_period() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    rules = rules_of(clock, limit("agent", "day", 1.0, name="a"), settings=SpendAlerts(spike_factor=0))
    sent: set[str] = set()
    spent = []
    for _ in range(12):  # $0.10 a run, judged after each
        rules.ledger.add(result(0.1, at("2026-05-04 10:00"), agent="a"))
        spent.append(send(rules, clock, sent))
    assert spent[4] == ["agent=a:day:2026-05-04:50%"]
    assert spent[7] == ["agent=a:day:2026-05-04:80%"]
    assert spent[9] == ["agent=a:day:2026-05-04:100%"]
    assert sum(len(ids) for ids in spent) == 3  # nothing twice

    clock.now = at("2026-05-05 08:00")  # the next day: the same thresholds again, with new ids
    for _ in range(5):
        rules.ledger.add(result(0.1, at("2026-05-05 07:00"), agent="a"))
    assert send(rules, clock, sent) == ["agent=a:day:2026-05-05:50%"]


def test_a_jump_past_several_thresholds_sends_each_and_the_last_says_runs_are_refused() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    rules = rules_of(clock, limit("project", "month", 10.0), settings=SpendAlerts(spike_factor=0))
    rules.ledger.add(result(12.0, at("2026-05-04 10:00")))
    due = rules.due(clock(), set())
    assert [a.threshold_pct for a in due] == [50, 80, 100]
    assert [a.alert_id for a in due][-1] == "project:month:2026-05:100%"
    last = due[-1]
    assert last.kind is AlertKind.THRESHOLD and last.spent_usd == 12.0 and last.limit_usd == 10.0
    assert last.message == (
        "spend alert 100%: the project spent $12.00 of its $10.00 monthly limit (2026-05 UTC); "
        "new runs are refused until the month turns (UTC)"
    )


def test_a_limit_on_each_tenant_alerts_per_tenant_with_its_own_id() -> None:
    clock = Clock(at("2026-05-04 12:00"))
    rules = rules_of(clock, limit("tenant", "day", 1.0), settings=SpendAlerts(thresholds=(80,), spike_factor=0))
    rules.ledger.add(result(0.9, at("2026-05-04 10:00"), tenant="acme"))
    rules.ledger.add(result(0.2, at("2026-05-04 10:00"), tenant="zen"))
    assert [a.alert_id for a in rules.due(clock(), set())] == ["tenant*=acme:day:2026-05-04:80%"]


def spike_rules(clock: Clock, history_days: int, daily: float) -> AlertRules:
    rules = rules_of(clock, settings=SpendAlerts(spike_factor=3, spike_window_days=30, spike_min_days=7))
    today = at("2026-05-31 12:00")
    for back in range(1, history_days + 1):
        rules.ledger.add(result(daily, today - timedelta(days=back)))
    return rules


def test_a_day_over_three_times_the_trailing_average_is_one_alert() -> None:
    clock = Clock(at("2026-05-31 12:00"))
    rules = spike_rules(clock, history_days=30, daily=1.0)
    rules.ledger.add(result(3.0, at("2026-05-31 09:00")))
    assert rules.due(clock(), set()) == []  # 3× exactly is not above it
    rules.ledger.add(result(0.5, at("2026-05-31 10:00")))
    sent: set[str] = set()
    (spike,) = rules.due(clock(), sent)
    assert spike.kind is AlertKind.SPIKE and spike.alert_id == "spike:project:day:2026-05-31"
    assert spike.average_usd == 1.0 and spike.spent_usd == 3.5 and spike.history_days == 30
    assert "more than 3× its average of $1.00 a day over the 30 days before" in spike.message
    sent.add(spike.alert_id)
    rules.ledger.add(result(5.0, at("2026-05-31 11:00")))
    assert rules.due(clock(), sent) == []  # once a day


def test_the_average_covers_only_the_history_there_is_and_needs_min_days_of_it() -> None:
    clock = Clock(at("2026-05-31 12:00"))
    short = spike_rules(clock, history_days=6, daily=1.0)
    short.ledger.add(result(10.0, at("2026-05-31 09:00")))
    assert short.due(clock(), set()) == []  # 6 days < spike_min_days

    enough = spike_rules(clock, history_days=7, daily=1.0)
    enough.ledger.add(result(3.5, at("2026-05-31 09:00")))
    (spike,) = enough.due(clock(), set())
    assert spike.history_days == 7 and spike.average_usd == 1.0  # not diluted over 30 days
