"""`SpendLimits`: `ferry.yaml`'s `spend_limits` judged against a `SpendLedger`.

A limit is reached when the spend of its subject in the current period is at least the
limit; from then on a new run in its scope is refused until the period turns. A limit
without a `name` holds for each agent (or tenant) on its own. A pipeline stage is in the
scope of its agent and of its pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from app.contracts.money import format_usd
from app.observability.spend.ledger import PROJECT, SpendLedger, Subject
from app.observability.spend.periods import period_key, period_name
from app.project.config import SpendLimit

#: Float sums of prices: $0.1 × 10 is 0.9999999999999999, which has reached $1.
_EPSILON_USD = 1e-9


@dataclass(frozen=True)
class LimitState:
    """One limit for one subject in one period, and what was spent."""

    limit: SpendLimit
    subject: str | None  # the agent or tenant; None for the project
    period_key: str
    spent_usd: float

    @property
    def share(self) -> float:
        """Spent / limit (1.0 = reached)."""
        return (self.spent_usd + _EPSILON_USD) / self.limit.limit_usd

    @property
    def reached(self) -> bool:
        return self.share >= 1.0

    @property
    def who(self) -> str:
        return "the project" if self.subject is None else f"{self.limit.scope} {self.subject!r}"

    def describe(self) -> str:
        """`agent 'x' spent $1.02 of its $1.00 daily limit (2026-05-04 UTC)`."""
        each = f", each {self.limit.scope}" if self.limit.scope != "project" and self.limit.name is None else ""
        return (
            f"{self.who} spent {format_usd(self.spent_usd)} of its {format_usd(self.limit.limit_usd)} "
            f"{period_name(self.limit.period)} limit ({self.period_key} UTC{each})"
        )


class SpendLimits:
    def __init__(self, limits: Sequence[SpendLimit], ledger: SpendLedger) -> None:
        self.limits = tuple(limits)
        self.ledger = ledger

    def refusal(self, agents: Sequence[str], tenant: str, now: datetime) -> str | None:
        """Why a new run of `agents` (the agent, and its pipeline for a stage) for `tenant`
        may not start now; None when every limit leaves room."""
        for limit in self.limits:
            for subject in _bound(limit, agents, tenant):
                state = self._state(limit, subject, now)
                if state.reached:
                    return (
                        f"spend limit reached: {state.describe()}; new runs are refused "
                        f"until the {limit.period} turns (UTC)"
                    )
        return None

    def states(self, now: datetime) -> Iterator[LimitState]:
        """Every limit for every subject with spend in its current period."""
        for limit in self.limits:
            key = period_key(limit.period, now)
            if limit.scope == "project":
                subjects: list[str | None] = [None]
            elif limit.name is not None:
                subjects = [limit.name]
            else:
                subjects = list(self.ledger.names(limit.scope, limit.period, key))
            for subject in subjects:
                yield self._state(limit, subject, now)

    def _state(self, limit: SpendLimit, subject: str | None, now: datetime) -> LimitState:
        key = period_key(limit.period, now)
        of: Subject = PROJECT if subject is None else (limit.scope, subject)
        return LimitState(limit, subject, key, self.ledger.spent(of, limit.period, key))


def _bound(limit: SpendLimit, agents: Sequence[str], tenant: str) -> list[str | None]:
    """The subjects of `limit` a run of `agents` for `tenant` is in (None: the project)."""
    if limit.scope == "project":
        return [None]
    names = list(agents) if limit.scope == "agent" else [tenant]
    if limit.name is None:
        return list(names)
    return [limit.name] if limit.name in names else []
