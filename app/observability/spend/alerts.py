"""Which spend alerts are due: thresholds of each limit, and a day far above the average.

Alerts are judged on the state, not on the event that changed it: every alert whose
condition holds now and whose id is not among those already sent is due. So an alert
missed while no worker was judging (a rebalance, a restart) is sent when one judges
again, and judging twice sends nothing twice. Ids are deterministic (`alert_id`).

Thresholds: for each limit and subject, one alert per threshold (50, 80, 100 % by
default) per period; a jump past several thresholds at once sends each of them.

Spike: the project's spend today above `spike_factor` × its average daily spend over
the `spike_window_days` days before today. The average covers the days the history
covers (days before the first result Ferry has are not counted as zero), and is judged
only once that is at least `spike_min_days` days. One alert per day at most.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime

from app.contracts.alerts import AlertKind, SpendAlert
from app.contracts.money import format_usd
from app.observability.spend.ledger import SpendLedger
from app.observability.spend.limits import LimitState, SpendLimits
from app.observability.spend.periods import day_key, days_before, utc
from app.project.config import SpendAlerts


def threshold_id(state: LimitState, pct: int) -> str:
    """`agent=invoice-extractor:day:2026-05-04:80%`; `agent*=…` for a limit on each agent."""
    limit = state.limit
    who = "project" if limit.scope == "project" else f"{limit.scope}{'' if limit.name else '*'}={state.subject}"
    return f"{who}:{limit.period}:{state.period_key}:{pct}%"


def spike_id(day: str) -> str:
    return f"spike:project:day:{day}"


class AlertRules:
    def __init__(self, limits: SpendLimits, settings: SpendAlerts) -> None:
        self.limits = limits
        self.settings = settings

    @property
    def ledger(self) -> SpendLedger:
        return self.limits.ledger

    def due(self, now: datetime, sent: Container[str]) -> list[SpendAlert]:
        """The alerts whose condition holds at `now` and whose id is not in `sent`."""
        due = [
            alert
            for state in self.limits.states(now)
            for alert in self._thresholds(state, now)
            if alert.alert_id not in sent
        ]
        spike = self._spike(now)
        if spike is not None and spike.alert_id not in sent:
            due.append(spike)
        return due

    def _thresholds(self, state: LimitState, now: datetime) -> list[SpendAlert]:
        limit = state.limit
        alerts = []
        for pct in self.settings.thresholds:
            if state.share * 100 < pct:
                break  # thresholds are sorted
            refused = f"; new runs are refused until the {limit.period} turns (UTC)" if pct >= 100 else ""
            alerts.append(
                SpendAlert(
                    alert_id=threshold_id(state, pct),
                    kind=AlertKind.THRESHOLD,
                    scope=limit.scope,
                    subject=state.subject,
                    each=limit.scope != "project" and limit.name is None,
                    period=limit.period,
                    period_key=state.period_key,
                    threshold_pct=pct,
                    limit_usd=limit.limit_usd,
                    spent_usd=state.spent_usd,
                    message=f"spend alert {pct}%: {state.describe()}{refused}",
                    created_at=now,
                )
            )
        return alerts

    def _spike(self, now: datetime) -> SpendAlert | None:
        factor = self.settings.spike_factor
        start = self.ledger.history_start
        if factor <= 0 or start is None:
            return None
        today = utc(now).date()
        days = [day for day in days_before(today, self.settings.spike_window_days) if day >= start]
        if len(days) < self.settings.spike_min_days:
            return None
        average = sum(self.ledger.project_day(day) for day in days) / len(days)
        spent = self.ledger.project_day(today)
        if spent <= 0 or spent <= factor * average:
            return None
        key = day_key(today)
        return SpendAlert(
            alert_id=spike_id(key),
            kind=AlertKind.SPIKE,
            scope="project",
            period="day",
            period_key=key,
            spent_usd=spent,
            average_usd=average,
            factor=factor,
            history_days=len(days),
            message=(
                f"spend alert: the project spent {format_usd(spent)} on {key} (UTC), more than {factor:g}× "
                f"its average of {format_usd(average)} a day over the {len(days)} days before"
            ),
            created_at=now,
        )
