"""`Outbox`: everything a worker writes to Kafka, each write confirmed before it returns.

A run's outputs are produced in a fixed order, each awaited until the broker has it
(acks=all): the next stage's request or the pipeline result first, a failed run's copy
on its agent's failed-runs topic (when asked for), then the run's own result, and only
then is the input offset acked. So "the result exists" implies
"everything before it exists", which is what redelivery checks (see `result_index.py`).
Trace events are fire-and-forget: losing a span on a crash loses no run. They go out on
a producer of their own: aiokafka keeps one produce request in flight per broker, so on a
shared producer a result could wait behind the request carrying its run's spans, one more
round trip on a run's path (not measured apart: bench/RESULTS.md, "The consumer on the
worker's loop"). The other records nothing waits for ride with them (`best_effort`: a
run's checkpoint tombstones), in the order queued: one request where each was one.
A request carries the W3C trace context of the span it continues in its headers
(`trace_headers`).

The producer exists only between `start` and `stop`: an outbox that never started has
nothing to close (aiokafka warns about a producer built and never stopped).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer

from app.contracts import ApprovalRecord, RunRequest, RunResult, SpanEvent
from app.contracts.trace_context import TraceContext
from app.kafka import KeyPartitioner
from app.streams.connect import start_client
from app.streams.messages import DeadLetter
from app.streams.naming import TopicNames
from app.streams.replay import FailedRun, failed_topic
from app.streams.retry_topics import RetryRecord, retry_plan
from app.streams.topic_admin import apply_topics
from app.streams.topic_plan import PlannedTopic
from app.streams.trace_headers import trace_headers

log = logging.getLogger(__name__)

FAILED_RUNS_RETENTION_MS = 30 * 24 * 3600 * 1000

#: How long spans gather before a produce request: fewer, larger requests, off every run's path.
SPAN_LINGER_MS = 50

_Record = tuple[str, bytes, bytes | None, int | None]  # topic, key, value (None: a tombstone), partition


class Outbox:
    def __init__(
        self, bootstrap: str, names: TopicNames, *, linger_ms: int = 0, replication: int | None = None
    ) -> None:
        """`linger_ms` of the results' producer. No linger by default: aiokafka keeps one
        produce request in flight per broker, so under load the results that end while one
        is out share the next request anyway, and a linger only held back each result that
        ended alone (about 2 ms of the paced p50: bench/RESULTS.md, "The results' producer
        without a linger")."""
        self.names = names
        self._replication = replication or 1
        self._failed_topics: set[str] = set()  # failed-runs and retry topics known to exist
        self._bootstrap = bootstrap
        self._linger_ms = linger_ms
        self._started: AIOKafkaProducer | None = None
        self._best_effort_producer: AIOKafkaProducer | None = None
        self._best_effort: list[_Record] = []  # spans and the like, waiting for the sender below
        self._best_effort_sender: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._started is not None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            # A batch whose acknowledgement was lost (the broker died after writing it) is
            # sent again on reconnect; idempotence keeps the broker from writing it twice.
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            max_request_size=8 * 1024 * 1024,
            partitioner=KeyPartitioner(),  # a run's result and spans share its run id: hashed once
        )
        await start_client(producer.start, producer.stop, self._bootstrap)
        best_effort = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks=1,  # best effort: the leader's word is enough for a span or a tombstone
            linger_ms=SPAN_LINGER_MS,
            max_request_size=8 * 1024 * 1024,
            partitioner=KeyPartitioner(),
        )
        try:
            await start_client(best_effort.start, best_effort.stop, self._bootstrap)
        except BaseException:
            await producer.stop()
            raise
        self._started, self._best_effort_producer = producer, best_effort

    async def stop(self) -> None:
        producer, self._started = self._started, None
        if producer is None:
            return
        if self._best_effort_sender is not None:  # the records queued so far still go out
            await asyncio.gather(self._best_effort_sender, return_exceptions=True)
        best_effort, self._best_effort_producer = self._best_effort_producer, None
        assert best_effort is not None  # started together with the producer
        try:
            await best_effort.stop()
        finally:
            await producer.stop()

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._started is None:
            raise RuntimeError("the outbox is not started")
        return self._started

    async def result(self, result: RunResult) -> None:
        await self._send(self.names.results, result.run_id.encode(), result.model_dump_json().encode())

    async def request(
        self, topic: str, request: RunRequest, key: str | None, *, trace: TraceContext | None = None
    ) -> None:
        """A run request (a pipeline's next stage); `trace`: the span the run will continue."""
        record_key = (key if key is not None else request.run_id).encode()
        await self._send(topic, record_key, request.model_dump_json().encode(), trace_headers(trace))

    async def park(self, approval: ApprovalRecord) -> None:
        """A run waiting for a human decision (app/streams/approvals.py)."""
        await self._send(self.names.approvals, approval.run_id.encode(), approval.model_dump_json().encode())

    async def dead_letter(self, letter: DeadLetter) -> None:
        key = (letter.run_id or f"{letter.topic}:{letter.partition}:{letter.offset}").encode()
        await self._send(self.names.dlq, key, letter.model_dump_json().encode())

    async def failed_run(self, failed: FailedRun) -> None:
        """A failed run kept for `ferry dlq replay` on its agent's failed-runs topic, which is
        created on its first use (30 days, like runs.dlq)."""
        topic = failed_topic(self.names, failed.agent)
        if topic not in self._failed_topics:
            plan = PlannedTopic(
                name=topic,
                partitions=1,
                replication=self._replication,
                configs={"cleanup.policy": "delete", "retention.ms": str(FAILED_RUNS_RETENTION_MS)},
                cleanup_policy="delete",
                agent=failed.agent,
            )
            await apply_topics(self._bootstrap, [plan])
            self._failed_topics.add(topic)
        await self._send(topic, failed.run_id.encode(), failed.model_dump_json().encode())

    async def retry_later(self, retry: RetryRecord, delay: float) -> None:
        """A run's next try, on the topic of its delay (created on first use)."""
        plan = retry_plan(self.names, delay, self._replication)
        if plan.name not in self._failed_topics:
            await apply_topics(self._bootstrap, [plan])
            self._failed_topics.add(plan.name)
        await self._send(plan.name, retry.request.run_id.encode(), retry.model_dump_json().encode())

    async def keyed(self, topic: str, key: str, value: bytes) -> None:
        """A record of one of Ferry's own keyed topics (a scheduled run on ferry.triggers)."""
        await self._send(topic, key.encode(), value)

    def span(self, event: SpanEvent) -> None:
        """Queue a span for runs.traces."""
        self.best_effort(self.names.traces, event.run_id.encode(), event.model_dump_json().encode())

    def best_effort(self, topic: str, key: bytes, value: bytes | None, partition: int | None = None) -> None:
        """Queue a record that nothing waits for, sent after those queued before it on the
        producer of the spans (acks=1; a failure is only logged). One sender task takes all the
        records queued while it runs (a task per span cost more than producing the span)."""
        self._best_effort.append((topic, key, value, partition))
        if self._best_effort_sender is None:
            self._best_effort_sender = asyncio.ensure_future(self._send_best_effort())

    async def _send_best_effort(self) -> None:
        try:
            while self._best_effort and (producer := self._best_effort_producer) is not None:
                records, self._best_effort = self._best_effort, []
                for topic, key, value, partition in records:
                    try:
                        await producer.send(topic, key=key, value=value, partition=partition)
                    except Exception as exc:  # best effort: a lost span or tombstone loses no run
                        log.debug("a record for %s was not sent: %s", topic, exc)
        finally:
            self._best_effort_sender = None

    async def _send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
        delivery = await self._producer.send(topic, key=key, value=value, headers=headers)
        await delivery
