"""Cancel requests: a compacted topic every worker reads, so any worker can stop any run.

The API and `ferry cancel` never reach a worker directly (Kafka is the system of
record): they produce a `CancelRequest` keyed by run id on `runs.cancellations`. Each
worker reads every partition of that topic with no consumer group (a cancel concerns
whichever worker holds the run, queued or running) from `capacity / partitions`
records before the end, and keeps the most recent `capacity` run ids: a request that
is read after its cancel (a redelivery, a run still queued behind others) is still
recognised. Each id read is handed to `on_cancel` at once, which stops the run if it is
running here.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.streams.topic_tail import TopicTail

log = logging.getLogger(__name__)


class CancelRequest(BaseModel):
    """One cancel, as produced on `runs.cancellations` (key: the run id)."""

    model_config = ConfigDict(extra="ignore")

    schema_version: int = 1
    run_id: str
    tenant: str | None = None  # who asked, when known (the API checked it owns the run)
    requested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str = "cli"


class CancellationFeed:
    """The run ids cancelled recently, fed by `runs.cancellations`; `run_id in feed`."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        on_cancel: Callable[[str], None] | None = None,
        capacity: int = 10_000,
        # A fetch returns as soon as a cancel arrives (the topic has one partition), so a
        # long wait costs no latency, only fewer idle polls.
        fetch_max_wait_ms: int = 500,
    ) -> None:
        self.on_cancel = on_cancel
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._tail = TopicTail(bootstrap, topic, self._take, keep=capacity, fetch_max_wait_ms=fetch_max_wait_ms)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, run_id: str) -> None:
        """Remember `run_id` as cancelled and tell `on_cancel` (once per id kept)."""
        if run_id in self._ids:
            return
        self._ids[run_id] = None
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        if self.on_cancel is not None:
            try:
                self.on_cancel(run_id)
            except Exception:
                log.exception("cancel of run %s failed", run_id)

    async def start(self) -> None:
        """Read the recent cancels up to the end before any run starts (a cancel from before
        a restart still holds), then follow; on any failure stop what was started and raise."""
        await self._tail.start()

    async def stop(self) -> None:
        await self._tail.stop()

    def _take(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            if record.value is None:
                continue
            try:
                self.add(CancelRequest.model_validate_json(record.value).run_id)
            except ValidationError:
                log.warning("cancellations: ignored a record that is not a cancel request")
