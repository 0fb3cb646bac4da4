"""One record in, its outputs out, its offset acked last: the per-message path of a worker.

    record ─ track ─ decode ─┬─ poison ─────────────────────────────► runs.dlq, ack
                     ├─ pipeline request ─► stage 0 request ─► ack
                     ├─ already has a result / in flight ────► ack (redelivery)
                     └─ lane.submit ─┬─ dropped (key busy) ──► cancelled result, ack
                                     ├─ (coalesce) the key's waiting run ─► cancelled result, ack
                                     └─ start ─┬─ cancelled already ─► cancelled result, ack
                                               └─ engine.run ─► [next stage request |
                                                   pipeline result] ─► result ─► ack

A cancel (see `cancellations.py`) is a run id in `cancelled`, and a call of `cancel` as
it arrives: runs queued here are taken out of their lane and end `cancelled` at once,
one running here is stopped through `cancel_running` (the engine's `cancel`: its result
keeps the usage so far), and a run read later checks `cancelled` as it starts. A
pipeline's stages answer to the pipeline's run id too.

"Fail the message, not the runtime": nothing here raises into the consumer loop. A
run's failure is its result; a broken record is a DLQ record; if Kafka itself refuses a
write, the offset stays unacked and the record comes back after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Container, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from app.contracts import RunError, RunRequest, RunResult, RunStatus, SpanEvent
from app.contracts.errors import ErrorCategory
from app.contracts.trace_context import TraceContext
from app.engine.journal import journal_scope
from app.observability.run_observer import RunObserver
from app.project.models import SequentialAgentSpec
from app.project.project import Project
from app.streams.ack_order import InOrderAcks
from app.streams.approvals import parked_approval
from app.streams.bindings import Binding
from app.streams.checkpoints import CheckpointStore
from app.streams.durability import RunDurability
from app.streams.keys import concurrency_key
from app.streams.lane import Lane
from app.streams.lane_core import Admission, LaneCore, Ticket
from app.streams.messages import DeadLetter, PoisonRecord, decode_request, run_id_hint
from app.streams.outbox import Outbox
from app.streams.pipeline import first_stage, next_stage, pipeline_result
from app.streams.result_index import ResultIndex
from app.streams.trace_headers import Headers, RunSpanCatcher, read_trace_context

log = logging.getLogger(__name__)
parking = logging.getLogger("ferry.approvals")  # a Ferry line, shown with the run lines
resumes = logging.getLogger("ferry.checkpoints")  # a Ferry line (INFO shows with the run lines)


class Record(Protocol):
    """What the processor needs of a consumed record (a faust event in the worker)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers | None: ...
    def ack(self) -> None: ...


class Runner(Protocol):
    async def run(
        self,
        request: RunRequest,
        *,
        on_span: Callable[[SpanEvent], None] | None = None,
        trace_context: TraceContext | None = None,
    ) -> RunResult: ...


@dataclass
class Job:
    record: Record
    request: RunRequest
    binding: Binding
    trace: TraceContext | None = None  # from the record's headers: the span this run continues
    next_trace: TraceContext | None = None  # what the next pipeline stage continues (this run's span)


class Processor:
    """The records of a worker's topics; one lane per agent runs them.

    Partitions come and go with rebalances: `assign` hands new ones to their agents'
    lanes, `release` lets the runs of revoked ones finish (or cancels them at the
    deadline) and forgets their unacked offsets, `drain` does that for all on stop.
    """

    def __init__(
        self,
        project: Project,
        runner: Runner,
        outbox: Outbox,
        index: ResultIndex,
        *,
        max_request_bytes: int,
        emit_traces: bool = True,
        observer: RunObserver | None = None,
        cancelled: Container[str] = frozenset(),
        cancel_running: Callable[[str], bool] | None = None,
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        """`cancelled`: run ids cancelled (kept current by the cancellations feed);
        `cancel_running`: stops a running run so that its `run` returns it cancelled;
        `checkpoints`: where runs record their steps (agents with checkpoints on)."""
        self.project = project
        self.runner = runner
        self.outbox = outbox
        self.index = index
        self.max_request_bytes = max_request_bytes
        self.emit_traces = emit_traces
        self.observer = observer or RunObserver()  # log lines; metrics when it has them
        self._lanes: dict[str, Lane[Job]] = {}
        self._agent_of_topic: dict[str, str] = {}
        self._acks = InOrderAcks()
        self.cancelled = cancelled
        self._cancelling: set[asyncio.Task[None]] = (
            set()
        )  # cancels under way (queued runs ended, starting ones stopped)
        self.cancel_running = cancel_running
        self.counts: dict[str, int] = {
            "results": 0,
            "dlq": 0,
            "duplicates": 0,
            "dropped": 0,
            "replaced": 0,
            "routed": 0,
            "cancelled": 0,
            "replayed_steps": 0,
        }
        self.durability = RunDurability(project.config.durability, outbox, checkpoints, self.counts)

    def open_lane(self, agent: str, core: LaneCore[Job], topics: Iterable[str]) -> None:
        """Run `agent`'s records (those of `topics`) under `core`'s cap and read-ahead window."""
        self._lanes[agent] = Lane(agent, core, self.execute)
        self._agent_of_topic.update(dict.fromkeys(topics, agent))

    def assigned(self, agent: str) -> frozenset[int]:
        """The partitions of `agent` this worker owns now."""
        return frozenset(self._lanes[agent].core.assigned)

    def held(self, agent: str) -> int:
        """Runs of `agent` read and not yet finished (queued or running)."""
        core = self._lanes[agent].core
        return core.queued + core.running

    def loads(self) -> dict[str, tuple[int, int]]:
        """Agent → (runs running, runs queued) now: what the worker's gauges read at a scrape."""
        return {agent: (lane.core.running, lane.core.queued) for agent, lane in self._lanes.items()}

    def assign(self, partitions: Iterable[tuple[str, int]]) -> None:
        """The (topic, partition) pairs this worker owns now (all of them): their runs may start."""
        by_agent = self._by_agent(partitions)
        for agent, lane in self._lanes.items():
            lane.assign(by_agent.get(agent, set()))

    async def release(self, partitions: Iterable[tuple[str, int]], deadline: float) -> None:
        """Give up (topic, partition) pairs: their runs get `deadline` seconds, then are cancelled."""
        revoked = list(partitions)
        await asyncio.gather(
            *(self._lanes[agent].release(numbers, deadline) for agent, numbers in self._by_agent(revoked).items())
        )
        # Whatever is still unacked now belongs to the next owner of the partition.
        self._acks.forget(revoked)

    async def drain(self, deadline: float) -> None:
        """Stop: refuse new records, let running runs finish within `deadline`, cancel the rest."""
        await asyncio.gather(*(lane.drain(deadline) for lane in self._lanes.values()), *self._cancelling)

    def _by_agent(self, partitions: Iterable[tuple[str, int]]) -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for topic, partition in partitions:
            agent = self._agent_of_topic.get(topic)
            if agent is not None:  # routing topics have no lane
                found.setdefault(agent, set()).add(partition)
        return found

    async def handle(self, record: Record, binding: Binding) -> None:
        """Process one record; returns once it is queued (runs continue in the lane)."""
        self._acks.track(record)
        try:
            await self._handle(record, binding)
        except Exception:
            log.exception(
                "record %s[%d]@%d not processed; it will be redelivered", record.topic, record.partition, record.offset
            )

    async def _handle(self, record: Record, binding: Binding) -> None:
        expected = frozenset({binding.agent})
        try:
            request = decode_request(record.value, expected, self.max_request_bytes)
            self._check_stage(request, binding)
        except PoisonRecord as poison:
            await self._dead_letter(record, poison.reason)
            return
        trace = read_trace_context(record.headers)
        if binding.route:
            await self._route(record, request, trace)
            return
        if request.run_id in self.index:
            self._skip(record, request, "already has a result")
            return
        lane = self._lanes[binding.agent]
        if lane.core.knows(request.run_id):
            self._skip(record, request, "already queued or running")
            return
        agent = self.project.agents[binding.agent]
        job = Job(record, request, binding, trace)
        ticket = Ticket(
            run_id=request.run_id,
            tenant=request.tenant,
            partition=record.partition,
            key=concurrency_key(agent, request.input),
            size=len(record.value or b""),
            payload=job,
        )
        admission = await lane.submit(ticket)
        while ticket.replaced:  # on_conflict: coalesce: the key's waiting run gave way to this one
            await self._end_replaced(ticket.replaced.pop(0), ticket)
        if admission == Admission.DROPPED:
            self.counts["dropped"] += 1
            await self._finish(job, _cancelled(request, f"concurrency key {ticket.key!r} is busy (on_conflict: drop)"))
        elif admission == Admission.DUPLICATE:
            self._skip(record, request, "already queued or running")
        # Admission.CLOSED: the worker is stopping; the record stays unacked for redelivery.

    def is_cancelled(self, request: RunRequest) -> bool:
        """Cancelled by its own run id or, for a pipeline stage, by the pipeline's."""
        root = request.pipeline.root_run_id if request.pipeline is not None else None
        return request.run_id in self.cancelled or (root is not None and root in self.cancelled)

    def cancel(self, run_id: str) -> int:
        """Stop the runs running here that answer to `run_id` and end the queued ones (in a
        task: their results are produced); how many were running and stopped."""
        stopped = 0
        for lane in self._lanes.values():
            for ticket in lane.core.running_tickets():
                if not _answers_to(ticket, run_id) or self.cancel_running is None:
                    continue
                if self.cancel_running(ticket.run_id):
                    stopped += 1
                    log.info("run %s: cancelled while running", ticket.run_id)
                else:  # started a moment ago: the engine does not hold it yet
                    self._spawn(self._stop_once_started(lane, ticket), f"cancel starting {ticket.run_id}")
        if any(lane.core.queued for lane in self._lanes.values()):
            self._spawn(self._end_queued(run_id), f"cancel queued {run_id}")
        return stopped

    def _spawn(self, work: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._cancelling.add(task)
        task.add_done_callback(self._cancelling.discard)

    async def _stop_once_started(self, lane: Lane[Job], ticket: Ticket[Job], within: float = 1.0) -> None:
        """A run that passed its start check just before the cancel arrived: stop it as soon
        as the engine runs it (it may also be finishing already: then it keeps its result)."""
        assert self.cancel_running is not None
        loop = asyncio.get_running_loop()
        give_up = loop.time() + within
        while loop.time() < give_up and ticket in lane.core.running_tickets():
            await asyncio.sleep(0.02)
            if self.cancel_running(ticket.run_id):
                log.info("run %s: cancelled as it started", ticket.run_id)
                return

    async def _end_queued(self, run_id: str) -> None:
        for lane in list(self._lanes.values()):
            for ticket in await lane.withdraw(lambda t: _answers_to(t, run_id)):
                job = ticket.payload
                assert job is not None
                self.counts["cancelled"] += 1
                try:
                    await self._finish(job, _cancelled(job.request, "the run was cancelled before it started"))
                except Exception:
                    log.exception("run %s: cancelled result not produced; it will be redelivered", ticket.run_id)

    async def _end_replaced(self, old: Ticket[Job], by: Ticket[Job]) -> None:
        assert old.payload is not None
        self.counts["replaced"] += 1
        why = f"replaced by a newer run {by.run_id} of concurrency key {by.key!r} (on_conflict: coalesce)"
        try:
            await self._finish(old.payload, _cancelled(old.payload.request, why))
        except Exception:  # unacked: it comes back after a restart
            log.exception("run %s: replaced result not produced; it will be redelivered", old.run_id)

    async def execute(self, ticket: Ticket[Job]) -> None:
        """The lane's callback: run, emit, ack."""
        job = ticket.payload
        assert job is not None
        if self.is_cancelled(job.request):
            self.counts["cancelled"] += 1
            await self._finish(job, _cancelled(job.request, "the run was cancelled before it started"))
            return
        # The run's log fields hold for the rest of this task (the lane's task of this run alone).
        on_span = self.observer.started(job.request, self.outbox.span if self.emit_traces else None)
        # A pipeline stage keeps its run span: the next stage's request continues it.
        catcher = RunSpanCatcher(job.request.run_id, job.trace, on_span) if job.binding.stage is not None else None
        with journal_scope(
            self.durability.steps_of(job.binding.agent, job.request.run_id)
        ) as journal:  # steps done before a crash are replayed
            result = await self.runner.run(job.request, on_span=catcher or on_span, trace_context=job.trace)
        if journal is not None and journal.replayed:
            self.counts["replayed_steps"] += journal.replayed
            resumes.info("run %s: resumed, %d steps replayed from checkpoints", job.request.run_id, journal.replayed)
        if catcher is not None:
            job.next_trace = catcher.context
        await self._finish(job, result)

    async def _finish(self, job: Job, result: RunResult) -> None:
        agent = self.project.agents[job.binding.agent]
        if await self.durability.retry_later(agent, job.request, result, job.record.topic):
            self._acks.done(job.record)  # the run is on a retry topic now: no result yet
            return
        request = job.request
        if result.status is RunStatus.PAUSED:  # a tool call waits for a human: parked, slot and offset freed
            await self.outbox.park(parked_approval(request, result, topic=job.record.topic, key=job.record.key))
            self.counts["parked"] = self.counts.get("parked", 0) + 1
            parking.info("run %s: %s (ferry approvals)", request.run_id, result.error.message if result.error else "")
            self._acks.done(job.record)
            return
        if job.binding.stage is not None and request.pipeline is not None:
            pipeline = self.project.agents[request.pipeline.pipeline]
            assert isinstance(pipeline, SequentialAgentSpec)
            following = next_stage(pipeline, request, result)
            if following is not None:
                stage_agent = self.project.agents[following.agent]
                topic = self.outbox.names.stage(pipeline.name, request.pipeline.stage + 1, following.agent)
                await self.outbox.request(
                    topic, following, concurrency_key(stage_agent, following.input), trace=job.next_trace
                )
            else:
                whole = pipeline_result(request, result)
                await self.outbox.result(whole)
                self.index.add(whole.run_id)
                self.observer.finished(whole)
        await self.durability.keep_failed(job.binding.agent, request, result)
        await self.outbox.result(result)
        self.index.add(result.run_id)
        self.durability.forget(result.run_id)
        self.counts["results"] += 1
        self.observer.finished(result)
        self._acks.done(job.record)

    async def _route(self, record: Record, request: RunRequest, trace: TraceContext | None) -> None:
        if request.run_id not in self.index:
            pipeline = self.project.agents[request.agent]
            assert isinstance(pipeline, SequentialAgentSpec)
            stage = first_stage(pipeline, request)
            agent = self.project.agents[stage.agent]
            topic = self.outbox.names.stage(pipeline.name, 0, stage.agent)
            await self.outbox.request(topic, stage, concurrency_key(agent, stage.input), trace=trace)
            self.counts["routed"] += 1
        self._acks.done(record)

    def _check_stage(self, request: RunRequest, binding: Binding) -> None:
        if binding.stage is None:
            return
        ctx = request.pipeline
        if ctx is None or ctx.pipeline != binding.pipeline or ctx.stage != binding.stage:
            raise PoisonRecord(
                f"not a stage {binding.stage} request of pipeline {binding.pipeline!r} "
                f"(pipeline context: {ctx.model_dump(mode='json') if ctx else None})"
            )

    async def _dead_letter(self, record: Record, reason: str) -> None:
        letter = DeadLetter.for_record(
            reason, record.topic, record.partition, record.offset, record.key, record.value, run_id_hint(record.value)
        )
        await self.outbox.dead_letter(letter)
        self.counts["dlq"] += 1
        self.observer.dead_letter()
        log.warning("dead letter from %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
        self._acks.done(record)

    def _skip(self, record: Record, request: RunRequest, reason: str) -> None:
        self.counts["duplicates"] += 1
        self.observer.duplicate(request, f"{record.topic}[{record.partition}]@{record.offset}", reason)
        self._acks.done(record)


def _answers_to(ticket: Ticket[Job], run_id: str) -> bool:
    """Whether cancelling `run_id` concerns this run: its own id, or its pipeline's."""
    job = ticket.payload
    if job is None:
        return False
    pipeline = job.request.pipeline
    return run_id == ticket.run_id or (pipeline is not None and pipeline.root_run_id == run_id)


def _cancelled(request: RunRequest, message: str) -> RunResult:
    now = datetime.now(UTC)
    return RunResult.for_request(
        request,
        RunStatus.CANCELLED,
        started_at=now,
        ended_at=now,
        error=RunError(category=ErrorCategory.CANCELLED, message=message),
    )
