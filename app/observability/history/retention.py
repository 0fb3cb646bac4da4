"""Retention: runs and spans older than `history.retention_days` leave the store.

Every projector prunes on its own schedule (a delete of what is already gone is a
no-op, so N workers pruning the same database need no coordination), once right after
start and then every `prune_interval_s`. The projector also drops records that are
already past retention when a topic is replayed, so a replay does not re-grow the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from app.contracts.runs import utc_now
from app.observability.history.records import PruneReport
from app.observability.history.store import HistoryStore

log = logging.getLogger(__name__)


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    return now - timedelta(days=retention_days)


class RetentionPruner:
    def __init__(
        self,
        store: HistoryStore,
        retention_days: int,
        interval_s: float,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self.interval_s = interval_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.passes = 0

    def cutoff(self) -> datetime:
        return retention_cutoff(self._clock(), self.retention_days)

    async def prune_once(self) -> PruneReport:
        report = await asyncio.to_thread(self.store.prune, self.cutoff())
        self.passes += 1
        if report.runs or report.spans:
            log.info("history retention: pruned %d runs and %d spans", report.runs, report.spans)
        return report

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="ferry-history-retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.prune_once()
            except Exception:  # a failed pass is retried next interval; history keeps flowing
                log.warning("history retention pass failed; next try in %.0f s", self.interval_s, exc_info=True)
            await asyncio.sleep(self.interval_s)
