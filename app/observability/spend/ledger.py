"""`SpendLedger`: the cost of finished runs, summed per subject (the project, each agent,
each tenant) and per UTC day and month.

Fed from two sides: a worker's own results the moment they are produced, and every
worker's results read back from `runs.results` (see `feed.py`). A result is counted
once, by run id, whichever side brings it first: the ids of the last `seen_capacity`
results are remembered, enough to cover the round trip of a worker's own results.

What a result costs is `usage.cost_usd`, attributed to the UTC day and month the run
started in (as `ferry usage --by day` does). A pipeline's own result is not counted: its
usage is the sum of its stages', each counted as the stage's own result. A stage's cost
counts for its agent and also for its pipeline, so a limit on a pipeline's name holds
its stages. A result without a known price (cost None) cannot be counted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.contracts import RunResult
from app.observability.spend.periods import day_key, period_key, utc
from app.project.config import SpendPeriod, SpendScope

#: (scope, name): ("project", ""), ("agent", "invoice-extractor"), ("tenant", "acme").
Subject = tuple[SpendScope, str]
PROJECT: Subject = ("project", "")


@dataclass(frozen=True)
class Charge:
    run_id: str
    started_at: datetime
    cost_usd: float
    agents: tuple[str, ...]
    tenant: str


def charge_of(result: RunResult) -> Charge | None:
    """What `result` adds to the spend; None for a pipeline's own result."""
    ctx = result.pipeline
    if ctx is not None and ctx.root_run_id == result.run_id:
        return None
    agents = (result.agent,) if ctx is None or ctx.pipeline == result.agent else (result.agent, ctx.pipeline)
    cost = result.usage.cost_usd
    return Charge(result.run_id, utc(result.started_at), cost or 0.0, agents, result.tenant)


def run_subjects(agents: Iterable[str], tenant: str) -> list[Subject]:
    return [PROJECT, *(("agent", agent) for agent in agents), ("tenant", tenant)]


class SpendLedger:
    def __init__(
        self,
        *,
        keep_days: int,
        scopes: Iterable[SpendScope],
        now: Callable[[], datetime],
        seen_capacity: int = 200_000,
    ) -> None:
        """`keep_days`: past days whose totals are kept (the spike alert's window); `scopes`:
        the scopes summed per name besides the project (those some limit is about)."""
        self.keep_days = keep_days
        self.scopes = frozenset(scopes) | {"project"}
        self._now = now
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_capacity = seen_capacity
        self._buckets: dict[tuple[SpendPeriod, str], dict[Subject, float]] = {}
        self._history_start: date | None = None
        self._pruned_on: date | None = None
        self.counted = 0  # results counted (not skipped as already seen)

    def add(self, result: RunResult) -> bool:
        """Count `result` unless it was counted before; True when it was counted now."""
        if result.run_id in self._seen:
            return False
        self._remember(result.run_id)
        charge = charge_of(result)
        if charge is None:
            return False
        self.counted += 1
        started = charge.started_at.date()
        self._history_start = started if self._history_start is None else min(self._history_start, started)
        if not charge.cost_usd:
            return True
        today = self._prune()
        subjects = [s for s in run_subjects(charge.agents, charge.tenant) if s[0] in self.scopes]
        if started >= today - timedelta(days=self.keep_days):
            self._add_to(("day", day_key(started)), subjects, charge.cost_usd)
        if period_key("month", charge.started_at) >= period_key("month", self._now()):
            self._add_to(("month", period_key("month", charge.started_at)), subjects, charge.cost_usd)
        return True

    def spent(self, subject: Subject, period: SpendPeriod, key: str) -> float:
        return self._buckets.get((period, key), {}).get(subject, 0.0)

    def names(self, scope: SpendScope, period: SpendPeriod, key: str) -> list[str]:
        """The agents or tenants with spend in the period, sorted."""
        return sorted(name for (s, name) in self._buckets.get((period, key), {}) if s == scope)

    def project_day(self, day: date) -> float:
        return self.spent(PROJECT, "day", day_key(day))

    @property
    def history_start(self) -> date | None:
        """The first day Ferry has results of, as far as this ledger has read."""
        return self._history_start

    def note_history_before(self, day: date) -> None:
        """The topic holds results older than `day` (not read): the history starts no later."""
        self._history_start = day if self._history_start is None else min(self._history_start, day)

    def _remember(self, run_id: str) -> None:
        self._seen[run_id] = None
        while len(self._seen) > self._seen_capacity:
            self._seen.popitem(last=False)

    def _add_to(self, bucket: tuple[SpendPeriod, str], subjects: list[Subject], cost: float) -> None:
        totals = self._buckets.setdefault(bucket, {})
        for subject in subjects:
            totals[subject] = totals.get(subject, 0.0) + cost

    def _prune(self) -> date:
        """Drop periods that have turned and left the kept window; return today (UTC)."""
        now = self._now()
        today = utc(now).date()
        if self._pruned_on != today:
            oldest_day = day_key(today - timedelta(days=self.keep_days))
            month = period_key("month", now)
            for period, key in list(self._buckets):
                if (period == "day" and key < oldest_day) or (period == "month" and key < month):
                    del self._buckets[(period, key)]
            self._pruned_on = today
        return today
