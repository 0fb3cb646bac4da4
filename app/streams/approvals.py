"""Runs parked for a human decision: the `ferry.approvals` topic, who reads it and who decides.

    worker      a run ends `paused` (app/engine/approval.py) → its request is parked here as
                a `pending` ApprovalRecord; the offset is acked and the slot freed; the
                run's journal (checkpoints) keeps its steps
    decide      `ferry approvals approve|reject`, the API, or the expiry → the request goes
                back to its topic with the decision added, then the record says so
    resume      any worker runs it: the steps replay from the journal, the gated call now
                goes on (or not) as decided

The topic is compacted, one partition, keyed by run id: its latest record per run is
the run's approval state; `ApprovalBook` keeps that state in memory for whoever lists
approvals. The request is produced back *before* the record changes: a decision cut off
between the two is made again (the same run id: a worker recognises the duplicate)
rather than lost. One worker at a time (the `<app-id>.approvals` group's leader) turns
overdue requests into rejections (`timed_out`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError

from app.contracts import ApprovalDecision, ApprovalRecord, RunRequest, RunResult
from app.contracts.errors import BadInputError
from app.project.project import Project
from app.streams.connect import start_client
from app.streams.leader import TriggerLeader
from app.streams.naming import TopicNames
from app.streams.topic_admin import apply_topics
from app.streams.topic_plan import plan_topic
from app.streams.topic_tail import TopicTail
from app.streams.trace_headers import current_trace_context, trace_headers

log = logging.getLogger(__name__)

_READ_ALL = 1 << 62


class NotWaiting(BadInputError):
    """The run is not waiting for an approval (unknown, or decided already)."""


def parked_approval(request: RunRequest, result: RunResult, *, topic: str, key: bytes | None) -> ApprovalRecord:
    """The pending record of a run that ended `paused`."""
    details: dict[str, Any] = dict(result.error.details or {}) if result.error is not None else {}
    now = datetime.now(UTC)
    return ApprovalRecord(
        run_id=request.run_id,
        agent=request.agent,
        tenant=request.tenant,
        step=str(details.get("step", "")),
        tool=str(details.get("tool", "")),
        arguments=dict(details.get("arguments") or {}),
        message=details.get("message"),
        on_rejection=details.get("on_rejection", "fail"),
        requested_at=now,
        expires_at=now + timedelta(seconds=float(details.get("timeout_s", 3600))),
        topic=topic,
        key=key.decode() if key is not None else None,
        request=request,
    )


class ApprovalBook:
    """The latest approval record of every run, followed live."""

    def __init__(self, bootstrap: str, names: TopicNames) -> None:
        self.topic = names.approvals
        self.records: dict[str, ApprovalRecord] = {}
        self._tail = TopicTail(bootstrap, self.topic, self._take, keep=_READ_ALL, fetch_max_wait_ms=500)

    async def start(self) -> None:
        await self._tail.start()

    async def stop(self) -> None:
        await self._tail.stop()

    async def catch_up(self) -> None:
        await self._tail.catch_up()

    def pending(self, tenant: str | None = None) -> list[ApprovalRecord]:
        """Waiting requests, oldest first; `tenant`: only that tenant's."""
        waiting = [r for r in self.records.values() if r.status == "pending" and tenant in (None, r.tenant)]
        return sorted(waiting, key=lambda r: r.requested_at)

    def _take(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            if record.value is None:
                continue
            try:
                approval = ApprovalRecord.model_validate_json(record.value)
            except ValidationError:
                log.warning("approvals: record at offset %d is not an approval record", record.offset)
                continue
            self.records[approval.run_id] = approval


class ApprovalDesk:
    """Decides: the parked request back to its topic with the decision, then the record."""

    def __init__(self, bootstrap: str, names: TopicNames) -> None:
        self._bootstrap = bootstrap
        self._topic = names.approvals
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", linger_ms=0, max_request_size=8 * 1024 * 1024
        )
        await start_client(producer.start, producer.stop, self._bootstrap)
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def decide(
        self, record: ApprovalRecord, *, approved: bool, by: str, reason: str | None = None, timed_out: bool = False
    ) -> ApprovalRecord:
        if record.status != "pending":
            raise NotWaiting(f"run {record.run_id} is not waiting for an approval (it was {record.status})")
        if self._producer is None:
            raise RuntimeError("the approval desk is not started")
        decision = ApprovalDecision(approved=approved, by=by, reason=reason, timed_out=timed_out)
        resumed = record.request.model_copy(update={"approvals": {**record.request.approvals, record.step: decision}})
        await (
            await self._producer.send(
                record.topic,
                key=(record.key or record.run_id).encode(),
                value=resumed.model_dump_json().encode(),
                headers=trace_headers(current_trace_context()),
            )
        )
        status = "approved" if approved else "expired" if timed_out else "rejected"
        decided = record.model_copy(
            update={"status": status, "decided_by": by, "reason": reason, "decided_at": decision.decided_at}
        )
        await (
            await self._producer.send(self._topic, key=record.run_id.encode(), value=decided.model_dump_json().encode())
        )
        log.info("approvals: run %s %s (%s) by %s", record.run_id, status, record.tool, by)
        return decided


class Approvals:
    """The book and the desk together, the topic created if missing: a reader and decider of
    approvals (the API's, and every worker's through `ApprovalService`)."""

    def __init__(self, bootstrap: str, project: Project, names: TopicNames, *, replication: int | None = None) -> None:
        self._bootstrap = bootstrap
        self._topic = plan_topic(project, names, names.approvals, replication)
        self.book = ApprovalBook(bootstrap, names)
        self.desk = ApprovalDesk(bootstrap, names)

    async def start(self) -> None:
        await apply_topics(self._bootstrap, [self._topic])
        await self.book.start()
        await self.desk.start()

    async def stop(self) -> None:
        await self.desk.stop()
        await self.book.stop()

    def pending(self, tenant: str | None = None) -> list[ApprovalRecord]:
        return self.book.pending(tenant)

    def record(self, run_id: str) -> ApprovalRecord | None:
        return self.book.records.get(run_id)

    async def decide(self, record: ApprovalRecord, *, approved: bool, by: str, reason: str | None) -> ApprovalRecord:
        decided = await self.desk.decide(record, approved=approved, by=by, reason=reason)
        self.book.records[record.run_id] = decided  # read back at once, before the tail brings it
        return decided


async def expire_overdue(book: ApprovalBook, desk: ApprovalDesk, *, every_s: float = 1.0) -> None:
    """The leader's loop: a request nobody decided in time is rejected as timed out."""
    while True:
        now = datetime.now(UTC)
        for record in book.pending():
            if record.expires_at <= now:
                try:
                    await desk.decide(record, approved=False, by="timeout", timed_out=True)
                except NotWaiting:
                    continue
                book.records[record.run_id] = record.model_copy(update={"status": "expired"})
        await asyncio.sleep(every_s)


class ApprovalService:
    """What a worker runs for approvals: the book, the desk, and the expiry when it leads."""

    def __init__(
        self, bootstrap: str, project: Project, names: TopicNames, app_id: str, *, replication: int | None = None
    ) -> None:
        self.approvals = Approvals(bootstrap, project, names, replication=replication)
        self.leader = TriggerLeader(bootstrap, names.approvals, f"{app_id}.approvals", self._lead)

    async def start(self) -> None:
        await self.approvals.start()
        await self.leader.start()

    async def stop(self) -> None:
        await self.leader.stop()
        await self.approvals.stop()

    async def _lead(self, _: dict[str, Any]) -> None:
        await expire_overdue(self.approvals.book, self.approvals.desk)
