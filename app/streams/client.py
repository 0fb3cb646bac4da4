"""Producing run requests and waiting for their results: `ferry submit`, the demo, tests.

`Submitter` keys each request by the agent's concurrency key value (so one key always
lands on one partition, which the scheduler needs to serialise it), else by run id. It
sends the W3C trace context of the span the run continues in the record's headers: the
one given, else the caller's current OpenTelemetry span, else none (the run starts a
new trace).
`ResultWatcher` starts reading `runs.results` at its end *before* anything is
submitted, so no result can slip by between submit and wait; `from_beginning` with
`only` finds the result of a run that finished before (the topic is compacted by run id,
and a run id's results all land on the one partition its key hashes to: only those
partitions are read).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType

from aiokafka import AIOKafkaProducer, TopicPartition

from app.contracts import RunRequest, RunResult
from app.contracts.trace_context import TraceContext
from app.kafka import KeyPartitioner, LongPollConsumer, key_partition
from app.project.project import Project
from app.streams.cancellations import CancelRequest
from app.streams.connect import start_client, topic_partitions
from app.streams.keys import concurrency_key
from app.streams.naming import TopicNames
from app.streams.trace_headers import current_trace_context, trace_headers


class Submitter:
    def __init__(
        self, bootstrap: str, project: Project | None = None, names: TopicNames | None = None, *, linger_ms: int = 5
    ) -> None:
        self.project = project
        self.names = names or TopicNames()
        self._bootstrap = bootstrap
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=linger_ms,
            max_request_size=8 * 1024 * 1024,
            partitioner=KeyPartitioner(),
        )

    async def __aenter__(self) -> Submitter:
        await start_client(self._producer.start, self._producer.stop, self._bootstrap)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._producer.stop()

    def key_for(self, request: RunRequest) -> str:
        agent = self.project.agents.get(request.agent) if self.project is not None else None
        key = concurrency_key(agent, request.input) if agent is not None else None
        return key if key is not None else request.run_id

    async def submit(self, request: RunRequest, key: str | None = None, *, trace: TraceContext | None = None) -> None:
        """Produce one request and wait until the broker has it. `trace`: the span the run
        continues (default: the caller's current OpenTelemetry span, if any)."""
        await (await self.send(request, key, trace=trace))

    async def send(
        self, request: RunRequest, key: str | None = None, *, trace: TraceContext | None = None
    ) -> asyncio.Future[object]:
        """Produce without waiting for the broker (for bulk submits); await the returned future."""
        record_key = (key or self.key_for(request)).encode()
        delivery: asyncio.Future[object] = await self._producer.send(
            self.names.request(request.agent),
            key=record_key,
            value=request.model_dump_json().encode(),
            headers=trace_headers(trace or current_trace_context()),
        )
        return delivery

    async def cancel(self, run_id: str, *, tenant: str | None = None, source: str = "cli") -> None:
        """Ask every worker to cancel `run_id` (a queued run never starts, a running one
        stops); returns once the broker has the request."""
        cancel = CancelRequest(run_id=run_id, tenant=tenant, source=source)
        await (
            await self._producer.send(
                self.names.cancellations, key=run_id.encode(), value=cancel.model_dump_json().encode()
            )
        )

    async def send_raw(self, topic: str, value: bytes | None, key: bytes | None = None) -> None:
        await (await self._producer.send(topic, key=key, value=value))

    async def flush(self) -> None:
        await self._producer.flush()


class ResultWatcher:
    def __init__(
        self,
        bootstrap: str,
        names: TopicNames | None = None,
        *,
        from_beginning: bool = False,
        only: Iterable[str] | None = None,
    ) -> None:
        """`only`: keep the results of these run ids alone (the others are skipped by key, unparsed)."""
        self.names = names or TopicNames()
        self._only = {run_id.encode() for run_id in only} if only is not None else None
        self._bootstrap = bootstrap
        self._from_beginning = from_beginning
        self._consumer = LongPollConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
            auto_offset_reset="earliest",
        )
        self.results: dict[str, RunResult] = {}
        self.arrivals: dict[str, float] = {}
        self.duplicates = 0

    async def __aenter__(self) -> ResultWatcher:
        try:
            tps = await topic_partitions(self._bootstrap, self.names.results)
            if self._only:
                tps = _partitions_of(self._only, tps)
        except BaseException:
            await self._consumer.stop()  # built, never started: closed all the same
            raise
        await start_client(self._consumer.start, self._consumer.stop, self._bootstrap)
        try:
            self._consumer.assign(tps)
            if not self._from_beginning:  # else the assignment starts there (auto_offset_reset)
                for tp, end in (await self._consumer.end_offsets(tps)).items():
                    self._consumer.seek(tp, end)
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_ms: int = 200) -> None:
        loop = asyncio.get_running_loop()
        for records in (await self._consumer.getmany(timeout_ms=timeout_ms)).values():
            for record in records:
                if record.value is None or (self._only is not None and record.key not in self._only):
                    continue
                result = RunResult.model_validate_json(record.value)
                if result.run_id in self.results:
                    self.duplicates += 1
                self.results[result.run_id] = result
                self.arrivals.setdefault(result.run_id, loop.time())

    async def read_to_end(self, timeout: float = 30.0) -> None:
        """Read every result produced before this call (then `duplicates` counts all of them)."""
        tps = sorted(self._consumer.assignment())
        ends = await self._consumer.end_offsets(tps)
        async with asyncio.timeout(timeout):
            for tp, end in ends.items():
                while await self._consumer.position(tp) < end:
                    await self.poll()

    async def wait_for(self, run_ids: Iterable[str], timeout: float) -> dict[str, RunResult]:
        """Results of `run_ids` as they arrive; returns what came before `timeout` (maybe not all)."""
        wanted = set(run_ids)
        try:
            async with asyncio.timeout(timeout):
                while not wanted <= self.results.keys():
                    await self.poll()
        except TimeoutError:
            pass
        return {run_id: self.results[run_id] for run_id in wanted if run_id in self.results}


def _partitions_of(keys: Iterable[bytes], tps: list[TopicPartition]) -> list[TopicPartition]:
    """The partitions the producers' default partitioner (Kafka's murmur2) puts `keys` on."""
    ordered = sorted(tps, key=lambda tp: tp.partition)
    return sorted({ordered[key_partition(key, len(ordered))] for key in keys}, key=lambda tp: tp.partition)
