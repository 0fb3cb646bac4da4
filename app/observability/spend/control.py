"""`SpendControl`: a worker's spend limits and alerts, built from `ferry.yaml`.

    spend = SpendControl.for_project(project, bootstrap, TopicNames(prefix), app_id="ferry")
    await spend.start()              # the ledger caught up with the oldest period needed
    runner = spend.guard(engine)     # runs over a limit end budget_exceeded, others counted
    ...
    await spend.stop()

Parts: one `SpendLedger` (what was spent), `SpendLimits` (is there room), `AlertRules`
(which alerts are due), the `SpendFeed` reading every worker's results into the ledger,
the `AlertPublisher` sending alerts, and `SpendGuard` at the door of each run. Only a
project that has spend limits or `spend_alerts` builds any of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Protocol

from app.contracts import RunResult
from app.contracts.runs import utc_now
from app.observability.spend.alerts import AlertRules
from app.observability.spend.feed import SpendFeed
from app.observability.spend.guard import RunFunction, SpendGuard
from app.observability.spend.ledger import SpendLedger
from app.observability.spend.limits import SpendLimits
from app.observability.spend.periods import period_start
from app.observability.spend.publisher import AlertPublisher
from app.project.config import ProjectConfig, SpendAlerts
from app.project.project import Project

log = logging.getLogger("ferry.spend")


class SpendTopics(Protocol):
    """The topic names spend reads and writes; `app.streams.TopicNames` is one."""

    @property
    def results(self) -> str: ...

    @property
    def alerts(self) -> str: ...


class Runs(Protocol):
    """Whatever runs runs: the engine, or a test's runner."""

    @property
    def run(self) -> RunFunction: ...


class SpendControl:
    def __init__(
        self,
        config: ProjectConfig,
        bootstrap: str,
        topics: SpendTopics,
        *,
        group_id: str,
        agents: Collection[str] = (),
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        """`group_id`: the alert senders' group (one per app); `agents`: the project's, to
        warn of a limit naming none of them."""
        self.config = config
        self.alert_settings = config.spend_alerts or SpendAlerts()
        self._agents = frozenset(agents)
        self._now = now
        spike_days = self.alert_settings.spike_window_days if self.alert_settings.spike_factor > 0 else 0
        self.ledger = SpendLedger(keep_days=spike_days, scopes={limit.scope for limit in config.spend_limits}, now=now)
        self.limits = SpendLimits(config.spend_limits, self.ledger)
        self.rules = AlertRules(self.limits, self.alert_settings)
        self.feed = SpendFeed(bootstrap, topics.results, self.ledger, on_change=self._changed)
        self.publisher = AlertPublisher(bootstrap, topics.alerts, group_id, self.rules, now=now)

    @classmethod
    def for_project(cls, project: Project, bootstrap: str, topics: SpendTopics, *, app_id: str) -> SpendControl | None:
        """What a worker of `app_id` builds for `project`: None when its ferry.yaml has
        neither spend limits nor `spend_alerts` (then spend costs nothing at all)."""
        if not project.config.watches_spend:
            return None
        return cls(project.config, bootstrap, topics, group_id=f"{app_id}.spend-alerts", agents=project.agents)

    def since(self) -> datetime:
        """The start of the oldest period a limit or the spike alert needs."""
        now = self._now()
        starts = [period_start("day", now)]
        starts += [period_start(limit.period, now) for limit in self.config.spend_limits]
        if self.ledger.keep_days:
            starts.append(period_start("day", now) - timedelta(days=self.ledger.keep_days))
        return min(starts)

    async def start(self) -> None:
        """Catch the ledger up with the results since `since()`, then join the alert senders."""
        for index, limit in enumerate(self.config.spend_limits):
            if limit.scope == "agent" and limit.name is not None and self._agents and limit.name not in self._agents:
                log.warning(
                    "ferry.yaml spend_limits[%d]: no agent %r in the project; the limit holds no run", index, limit.name
                )
        await self.feed.start(self.since())
        try:
            await self.publisher.start()
        except BaseException:
            await self.feed.stop()
            raise
        self.publisher.nudge()  # judge once the group is joined, whatever the runs do

    async def stop(self) -> None:
        await self.publisher.stop()
        await self.feed.stop()

    def guard(self, runner: Runs) -> SpendGuard:
        """`runner` behind the spend limits: itself a runner."""
        return SpendGuard(runner.run, self.limits, on_result=self.record, now=self._now)

    def record(self, result: RunResult) -> None:
        """Count a result of this worker now, before it is read back from the topic."""
        if self.ledger.add(result):
            self._changed()

    def _changed(self) -> None:
        self.publisher.nudge()
