"""`CheckpointStore`: the step journals of runs (app/engine/journal.py) kept in Kafka.

    runs.checkpoints   key  "<run id>\\0<step>"   value  the step's JSON (tombstone: done)
                       3 partitions (every worker reads all of them; each partition costs
                       the broker memory, and a test suite makes one topic per prefix)
                       partition: the run id's murmur2 hash, so one run's steps share one
                       partition and arrive in the order written; cleanup compact,delete

A step is recorded with an acknowledged write (acks=all) before the run acts on it, so
a worker that dies after that write leaves it for whoever runs the redelivered request.
A run's final answer (`record_soon`) is kept here and held for `FINAL_ANSWER_HOLD_S`:
nothing outside the process acts on it before the run's result, and a result
acknowledged meanwhile stands for it (a redelivered request with a result is not run
again), so `forget` drops it unwritten: a one-call run writes no checkpoint record at
all. An answer whose result is late is written then; a later step of the run is
written after it, so a run's records reach the topic in order. Tombstones are best
effort: they ride with the worker's spans (`Outbox.best_effort`).
Every worker reads the whole topic from its beginning at start and follows it (the
topic holds only the steps of runs without a result: each run's steps are tombstoned
once its result is written, and `retention.ms` removes what a crash left untombstoned),
and catches up with it on every partition assignment before anything runs, as the
result index does: a step written by a worker that died just before is seen.

Every worker reads every run's steps, not only those of its partitions: simpler than
following the group's assignment, and cheap while runs are short (what is live is a
few records per run in flight). Reading only the partitions of the requests a worker
holds is the next step if the topic grows large.

The topic is created here, idempotently, when the worker starts (its spec is not in
topics/ yet).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer, ConsumerRecord

from app.kafka import key_partition
from app.streams.connect import start_client, topic_partitions
from app.streams.naming import TopicNames
from app.streams.outbox import Outbox
from app.streams.topic_admin import apply_topics
from app.streams.topic_plan import PlannedTopic
from app.streams.topic_tail import BATCHED, TopicTail

log = logging.getLogger(__name__)

CHECKPOINTS = "runs.checkpoints"
CHECKPOINT_PARTITIONS = 3  # every worker reads them all: more buys nothing yet, and each costs the broker memory
CHECKPOINT_RETENTION_MS = 7 * 24 * 3600 * 1000
_SEPARATOR = "\x00"
_READ_ALL = 1 << 62  # TopicTail's "records back from the end": all of them
#: How long a run's final answer waits for the run's result before it is written anyway
#: (seconds; it is written between one and two holds after the answer). A result is
#: acknowledged within milliseconds of its answer, so the window in which a crash asks the
#: model again stays what an acknowledged write of the answer would leave; only a result
#: held up this long (a busy run, a stalled broker) has its answer written first.
FINAL_ANSWER_HOLD_S = 0.25


class _Held(NamedTuple):
    """A run's final answer, not written yet."""

    step: str
    value: bytes
    partition: int | None
    since: float  # the loop's clock


def checkpoints_topic(names: TopicNames) -> str:
    return names.prefix + CHECKPOINTS


def checkpoint_partition(run_id: str, partitions: int) -> int:
    """Where a run's steps go: the Java client's default partitioner on the run id alone."""
    return key_partition(run_id.encode(), partitions)


class CheckpointStore:
    def __init__(self, bootstrap: str, names: TopicNames, outbox: Outbox, *, replication: int | None = None) -> None:
        """`outbox`: sends the tombstones; it must stop after this store (they are queued on it)."""
        self.topic = checkpoints_topic(names)
        self._outbox = outbox
        self._bootstrap = bootstrap
        self._replication = replication or 1
        self._steps: dict[str, dict[str, bytes]] = {}  # run id → step → value
        self._producer: AIOKafkaProducer | None = None
        self._partitions = 0
        self._tail = TopicTail(
            bootstrap, self.topic, self._take, keep=_READ_ALL, fetch_max_wait_ms=BATCHED.wait_ms, flowing=BATCHED
        )
        self._tombstones: set[asyncio.Future[Any]] = set()  # waiting for a write of their run
        self._pending: dict[str, asyncio.Task[None]] = {}  # run id → its write not awaited by the run
        self._held: dict[str, _Held] = {}  # run id → its final answer, oldest first
        self._sweeper: asyncio.Task[None] | None = None  # writes the answers held too long
        self._partition_of: dict[str, int] = {}  # runs written here: where their tombstones go
        self.writes = 0

    async def start(self) -> None:
        plan = PlannedTopic(
            name=self.topic,
            partitions=CHECKPOINT_PARTITIONS,
            replication=self._replication,
            configs={"cleanup.policy": "compact,delete", "retention.ms": str(CHECKPOINT_RETENTION_MS)},
            cleanup_policy="compact,delete",
        )
        report = await apply_topics(self._bootstrap, [plan])
        for conflict in report.conflicts:
            log.warning("%s: %s", self.topic, conflict)
        self._partitions = len(await topic_partitions(self._bootstrap, self.topic))
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True, linger_ms=0)
        await start_client(producer.start, producer.stop, self._bootstrap)
        self._producer = producer
        try:
            await self._tail.start()
        except BaseException:
            await self.stop()
            raise

    async def catch_up(self, timeout: float = 60.0) -> None:
        """Return once every step written before this call is known here."""
        await self._tail.catch_up(timeout)

    async def stop(self) -> None:
        await self._tail.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for run_id in list(self._held):  # runs without a result: their answers are for the next worker
            self._release(run_id)
        # Writes under way finish on the producer first: with it cleared they would find no
        # producer and be dropped (a run's last step); the tombstones after them are queued.
        while under_way := [t for t in (*self._pending.values(), *self._tombstones) if not t.done()]:
            await asyncio.gather(*under_way, return_exceptions=True)
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def journal(self, run_id: str) -> RunSteps:
        """The `StepStore` of one run (app/engine/journal.py)."""
        return RunSteps(self, run_id)

    def steps_of(self, run_id: str) -> Mapping[str, bytes]:
        return self._steps.get(run_id, {})

    async def write(self, run_id: str, step: str, value: bytes, partition: int | None = None) -> None:
        """Write a step and return once it is acknowledged (after the run's earlier ones)."""
        self._release(run_id)
        await self._settle(run_id)
        await self._send(run_id, step, value, partition)
        self._steps.setdefault(run_id, {})[step] = value
        if partition is not None:
            self._partition_of[run_id] = partition

    def write_soon(self, run_id: str, step: str, value: bytes, partition: int | None = None) -> None:
        """Keep a run's final answer, known here at once; written only if the run's result
        has not been acknowledged (`forget`) within `FINAL_ANSWER_HOLD_S`."""
        self._release(run_id)  # an earlier answer of the run (its output was re-asked) goes first
        self._steps.setdefault(run_id, {})[step] = value
        if partition is not None:
            self._partition_of[run_id] = partition
        self._held[run_id] = _Held(step, value, partition, asyncio.get_running_loop().time())
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())

    def _release(self, run_id: str) -> None:
        """Start writing the run's held answer, if any, without waiting for it."""
        held = self._held.pop(run_id, None)
        if held is None:
            return
        step, value, partition = held.step, held.value, held.partition
        earlier = self._pending.get(run_id)
        task = asyncio.ensure_future(self._send_after(earlier, run_id, step, value, partition))
        self._pending[run_id] = task
        task.add_done_callback(
            lambda done: self._pending.pop(run_id, None) if self._pending.get(run_id) is done else None
        )

    async def _sweep(self) -> None:
        """Write the answers held a whole `FINAL_ANSWER_HOLD_S`; gone while none are held."""
        try:
            while self._held:
                await asyncio.sleep(FINAL_ANSWER_HOLD_S)
                due = asyncio.get_running_loop().time() - FINAL_ANSWER_HOLD_S
                for run_id, held in list(self._held.items()):
                    if held.since > due:
                        break  # held in the order they came
                    self._release(run_id)
        finally:
            self._sweeper = None

    async def _send_after(
        self, earlier: asyncio.Task[None] | None, run_id: str, step: str, value: bytes, partition: int | None
    ) -> None:
        if earlier is not None:
            await asyncio.gather(earlier, return_exceptions=True)
        try:
            await self._send(run_id, step, value, partition)
        except Exception as exc:  # the run goes on; its result (or retention) will stand for this step
            log.warning("checkpoint %s of run %s not written: %s", step, run_id, exc)

    async def _settle(self, run_id: str) -> None:
        """Wait for the run's write under way, so its steps reach the topic in their order."""
        pending = self._pending.get(run_id)
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)

    async def _send(self, run_id: str, step: str, value: bytes, partition: int | None) -> None:
        producer = self._require_producer()
        where = partition if partition is not None else checkpoint_partition(run_id, self._partitions)
        delivery = await producer.send(self.topic, key=_key(run_id, step), value=value, partition=where)
        await delivery
        self.writes += 1

    def forget(self, run_id: str) -> int:
        """The run has its result: drop its held answer unwritten, tombstone its steps (not
        awaited: a lost tombstone only leaves records that retention removes) after any write
        of the run under way; how many tombstones."""
        held = self._held.pop(run_id, None)
        steps = self._steps.pop(run_id, None)
        partition = self._partition_of.pop(run_id, None)
        if steps and held is not None:
            steps.pop(held.step, None)  # never written: nothing to tombstone
        if not steps or self._producer is None:
            return 0
        where = partition if partition is not None else checkpoint_partition(run_id, self._partitions)
        pending = self._pending.get(run_id)
        if pending is None:
            self._queue_tombstones(run_id, list(steps), where)
        else:
            task = asyncio.ensure_future(self._tombstones_after(pending, run_id, list(steps), where))
            self._tombstones.add(task)
            task.add_done_callback(self._tombstones.discard)
        return len(steps)

    async def _tombstones_after(self, write: asyncio.Task[None], run_id: str, steps: list[str], partition: int) -> None:
        """Once the run's write under way is on the topic: the tombstones go on another producer."""
        await asyncio.gather(write, return_exceptions=True)
        self._queue_tombstones(run_id, steps, partition)

    def _queue_tombstones(self, run_id: str, steps: list[str], partition: int) -> None:
        for step in steps:
            self._outbox.best_effort(self.topic, _key(run_id, step), None, partition)

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("the checkpoint store is not started")
        return self._producer

    def _take(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            if record.key is None:
                continue
            run_id, _, step = record.key.decode("utf-8", "replace").partition(_SEPARATOR)
            if record.value is None:
                steps = self._steps.get(run_id)
                if steps is not None:
                    steps.pop(step, None)
                    if not steps:
                        del self._steps[run_id]
                        self._partition_of.pop(run_id, None)
            else:
                self._steps.setdefault(run_id, {})[step] = record.value

    @property
    def partitions(self) -> int:
        return self._partitions

    @property
    def runs(self) -> int:
        """Runs with steps recorded and no result yet (as far as this worker knows)."""
        return len(self._steps)


class RunSteps:
    """One run's steps in the store: the engine's `StepStore`."""

    def __init__(self, store: CheckpointStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._partition: int | None = None  # hashed once per run, not per write

    @property
    def partition(self) -> int:
        if self._partition is None:
            self._partition = checkpoint_partition(self.run_id, self.store.partitions)
        return self._partition

    def recorded(self, step: str) -> Mapping[str, Any] | None:
        value = self.store.steps_of(self.run_id).get(step)
        if value is None:
            return None
        found: Mapping[str, Any] = json.loads(value)
        return found

    async def record(self, step: str, value: Mapping[str, Any]) -> None:
        await self.store.write(self.run_id, step, _encoded(value), self.partition)

    def record_soon(self, step: str, value: Mapping[str, Any]) -> None:
        self.store.write_soon(self.run_id, step, _encoded(value), self.partition)


def _encoded(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _key(run_id: str, step: str) -> bytes:
    return f"{run_id}{_SEPARATOR}{step}".encode()
