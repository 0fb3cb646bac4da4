"""`HistoryProjector`: `runs.results` and `runs.traces` → the history store.

    async with HistoryProjector(bootstrap, TopicNames(prefix), HistorySettings()) as projector:
        ...  # runs and spans appear in the store within a poll interval

One aiokafka consumer in its own group (`HistorySettings.group_id`), so every worker's
projector shares the topics' partitions with the others. The loop is:

    fetch up to batch_size records ─► decode (skip what is no RunResult / SpanEvent)
      ─► drop what is past retention ─► upsert the batch in one transaction
      ─► commit the offsets ─► fetch…

Offsets are committed only after the batch is in the store, so a crash replays the
batch (at-least-once) and the upserts make that replay a no-op. A write failed because
the database is unavailable is retried with back-off and nothing is committed
meanwhile: history lags, it does not lose. A batch the database refuses as such is
written record by record, and only the records it refuses are skipped (logged,
counted), so one bad record cannot block the history behind it. Start order: store (migrations) → consumer → loop and retention tasks; a failure
at any step undoes the steps before it, so a failed start leaks no consumer or task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError, KafkaError
from pydantic import ValidationError
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from app.contracts import RunResult, SpanEvent
from app.contracts.errors import ServiceUnreachableError
from app.contracts.runs import utc_now
from app.kafka import FlowingBatch, LongPollConsumer
from app.observability.history.projection import Row, latest_by_key, run_row, span_row
from app.observability.history.retention import RetentionPruner, retention_cutoff
from app.observability.history.settings import HistorySettings
from app.observability.history.store import HistoryStore, PreparedBatch

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 30.0
#: What a fetch waits for while runs keep finishing (up to `linger_ms`).
FLOWING_BATCH_BYTES = 64 * 1024
#: Records decoded (rows prepared) per turn of the event loop: ~1 ms of a busy worker's loop.
_SLICE = 64


class HistoryTopics(Protocol):
    """The topic names the projector reads; `app.streams.TopicNames` is one."""

    @property
    def results(self) -> str: ...

    @property
    def traces(self) -> str: ...


@dataclass
class ProjectorStats:
    runs: int = 0
    spans: int = 0
    undecodable: int = 0
    expired: int = 0
    refused: int = 0
    batches: int = 0
    write_failures: int = 0


@dataclass
class _Batch:
    results: list[RunResult]
    spans: list[SpanEvent]
    records: int
    run_rows: list[Row] = field(default_factory=list)
    span_rows: list[Row] = field(default_factory=list)


class HistoryProjector:
    def __init__(
        self,
        bootstrap: str,
        topics: HistoryTopics,
        settings: HistorySettings | None = None,
        *,
        store: HistoryStore | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """`store`: an open store to write to (left open on stop); by default the projector
        opens `settings.database_url` on start and closes it on stop."""
        self.bootstrap = bootstrap
        self.results_topic = topics.results
        self.traces_topic = topics.traces
        self.settings = settings or HistorySettings()
        self.stats = ProjectorStats()
        self._given_store = store
        self._clock = clock
        self.store: HistoryStore | None = None
        self._consumer: LongPollConsumer | None = None
        self._pruner: RetentionPruner | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> HistoryProjector:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Open the store, join the consumer group, start consuming and pruning.

        Raises `ServiceUnreachableError` (broker or database) or `ConfigError` (database
        URL, schema newer than this Ferry); nothing is left running when it raises."""
        if self._task is not None:
            raise RuntimeError("the history projector is already started")
        self._stopping = asyncio.Event()
        if self._given_store is not None:
            store = self._given_store
        else:
            store = await asyncio.to_thread(HistoryStore.open, self.settings.url())
        consumer = LongPollConsumer(
            self.results_topic,
            self.traces_topic,
            bootstrap_servers=self.bootstrap,
            group_id=self.settings.group_id,
            client_id="ferry-history",
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group (a new store) starts from the whole history
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            metadata_max_age_ms=5000,  # notice the topics soon when a worker creates them after us
            # The batch lingers anyway: while runs finish, fetch a batch's worth, not each span.
            flowing=FlowingBatch(FLOWING_BATCH_BYTES, self.settings.linger_ms) if self.settings.linger_ms else None,
        )
        try:
            # aiokafka alone waits 40 s per request on an address that never answers.
            async with asyncio.timeout(self.settings.connect_timeout_s):
                await consumer.start()
        except BaseException as exc:
            await _quietly(consumer.stop())
            self._close_own(store)
            if isinstance(exc, KafkaConnectionError | TimeoutError | OSError):
                raise ServiceUnreachableError(
                    "the Kafka broker",
                    self.bootstrap,
                    "start one with `ferry dev up`, or pass --broker / set FERRY_BROKER to a running Kafka",
                ) from exc
            raise
        self.store, self._consumer = store, consumer
        self._pruner = RetentionPruner(store, self.settings.retention_days, self.settings.prune_interval_s)
        self._pruner.start()
        self._task = asyncio.create_task(self._consume(consumer, store), name="ferry-history-projector")

    async def stop(self) -> None:
        """Finish the batch in hand (within `stop_timeout_s`), commit it, leave the group."""
        task, consumer, pruner, store = self._task, self._consumer, self._pruner, self.store
        self._task = self._consumer = self._pruner = None
        self.store = None
        self._stopping.set()
        if consumer is not None:
            consumer.stop_waiting()  # a wait for records ends now, not after poll_ms
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.settings.stop_timeout_s)
            except TimeoutError:
                log.warning("history projector: the batch in hand was not stored in time; it will be replayed")
                task.cancel()
                await asyncio.wait([task])
            except Exception:
                log.exception("history projector stopped with an error")
        if pruner is not None:
            await pruner.stop()
        if consumer is not None:
            await _quietly(consumer.stop())
        if store is not None:
            self._close_own(store)

    async def _consume(self, consumer: AIOKafkaConsumer, store: HistoryStore) -> None:
        while not self._stopping.is_set():
            try:
                if not await self._step(consumer, store):
                    return  # stopping with the batch unstored: not committed, replayed later
            except Exception:
                # A bug, not a bad record (those are skipped one by one): go back to the last
                # committed offsets so that nothing fetched since is committed unstored.
                log.exception("history projector: unexpected error; resuming from the last committed offsets")
                await _quietly(self._rewind(consumer))
                if await self._pause(self.settings.retry_backoff_s):
                    return

    async def _step(self, consumer: AIOKafkaConsumer, store: HistoryStore) -> bool:
        """One fetch, stored and committed; False when stopping before it was stored."""
        try:
            fetched = await consumer.getmany(timeout_ms=self.settings.poll_ms, max_records=self.settings.batch_size)
        except KafkaError as exc:
            log.warning("history projector: fetch failed (%s); retrying", exc)
            await self._pause(self.settings.retry_backoff_s)
            return True
        if not fetched:
            return True
        fetched = await self._linger(consumer, fetched)
        batch = await self._decode(fetched)
        if not await self._store(store, batch, await self._prepare(store, batch)):
            return False
        await self._commit(consumer)
        return True

    async def _linger(
        self, consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        """`fetched` and what arrives within `linger_ms` (up to `batch_size`).

        Under load a fetch returns the few records that came since the last one: stored as
        they come, each batch's fixed costs (a transaction, an offset commit, a fetch) would
        be paid every few runs. A stop cuts the wait short; the batch in hand is stored."""
        room = self.settings.batch_size - sum(map(len, fetched.values()))
        if room <= 0 or self.settings.linger_ms <= 0 or await self._pause(self.settings.linger_ms / 1000):
            return fetched
        try:
            more = await consumer.getmany(timeout_ms=0, max_records=room)
        except KafkaError as exc:
            log.warning("history projector: fetch failed (%s); storing the batch in hand", exc)
            return fetched
        for partition, records in more.items():
            fetched.setdefault(partition, []).extend(records)
        return fetched

    async def _rewind(self, consumer: AIOKafkaConsumer) -> None:
        for partition in consumer.assignment():
            committed = await consumer.committed(partition)
            if committed is None:
                await consumer.seek_to_beginning(partition)
            else:
                consumer.seek(partition, committed)

    async def _decode(self, fetched: Mapping[TopicPartition, Sequence[ConsumerRecord[Any, Any]]]) -> _Batch:
        """The batch's results and spans, with their rows, decoded on the loop a slice at a time.

        A batch is hundreds of records. Decoded in one go it held the worker's event loop (and
        its runs) for milliseconds; decoded in a thread it held the GIL as long, and the loop,
        woken meanwhile, could wait up to the interpreter's 5 ms switch interval for it. Here
        the loop takes `_SLICE` records at a time and serves its runs in between."""
        cutoff = retention_cutoff(self._clock(), self.settings.retention_days)
        batch = _Batch([], [], 0)
        for partition, records in fetched.items():
            for record in records:
                batch.records += 1
                if batch.records % _SLICE == 0:
                    await asyncio.sleep(0)
                value = record.value
                if value is None:  # a tombstone: nothing to record
                    continue
                try:
                    if partition.topic == self.results_topic:
                        result = RunResult.model_validate_json(value)
                        if _utc(result.ended_at) >= cutoff:
                            batch.results.append(result)
                            batch.run_rows.append(run_row(result))
                        else:
                            self.stats.expired += 1
                    else:
                        span = SpanEvent.model_validate_json(value)
                        if _utc(span.end) >= cutoff:
                            batch.spans.append(span)
                            batch.span_rows.append(span_row(span))
                        else:
                            self.stats.expired += 1
                except (ValidationError, ValueError) as exc:
                    self.stats.undecodable += 1
                    log.warning(
                        "history projector: %s[%d]@%d skipped, not a %s: %s",
                        partition.topic,
                        partition.partition,
                        record.offset,
                        "RunResult" if partition.topic == self.results_topic else "SpanEvent",
                        str(exc).splitlines()[0][:200],
                    )
        return batch

    async def _prepare(self, store: HistoryStore, batch: _Batch) -> PreparedBatch:
        """The batch's database parameters, built on the loop a slice at a time (as `_decode`)."""
        runs, spans = latest_by_key(batch.run_rows), latest_by_key(batch.span_rows)
        prepared = PreparedBatch()
        for start in range(0, max(len(runs), len(spans)), _SLICE):
            await asyncio.sleep(0)
            prepared.extend(store.prepare(runs[start : start + _SLICE], spans[start : start + _SLICE]))
        return prepared

    async def _store(self, store: HistoryStore, batch: _Batch, prepared: PreparedBatch) -> bool:
        """Write the batch, retrying while the database is unavailable; False if stopping first."""
        backoff = self.settings.retry_backoff_s
        while True:
            try:
                await asyncio.to_thread(store.write_prepared, prepared)
            except (OperationalError, InterfaceError, DisconnectionError, SQLAlchemyTimeoutError) as exc:
                failure = _first_line(exc)  # the database is down, locked or unreachable: wait
            except SQLAlchemyError as exc:
                # The database refused the batch itself: find the records it cannot hold.
                refused = await asyncio.to_thread(store.write_each, batch.results, batch.spans)
                if len(refused) < len(batch.results) + len(batch.spans):
                    self._skip_refused(refused)
                    break
                failure = _first_line(exc)  # every record refused: the store is broken, not them
            else:
                break
            self.stats.write_failures += 1
            log.warning("history projector: write failed (%s); retrying in %.1f s", failure, backoff)
            if await self._pause(backoff):
                return False
            backoff = min(backoff * 2, _MAX_BACKOFF_S)
        self.stats.runs += len(batch.results)
        self.stats.spans += len(batch.spans)
        self.stats.batches += 1
        return True

    def _skip_refused(self, refused: list[tuple[RunResult | SpanEvent, SQLAlchemyError]]) -> None:
        for record, exc in refused:
            self.stats.refused += 1
            what = f"result of run {record.run_id}" if isinstance(record, RunResult) else f"span {record.span_id}"
            log.warning("history projector: the database refused the %s, skipped: %s", what, _first_line(exc))

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await consumer.commit()
        except CommitFailedError:
            # The partitions moved to another member mid-batch: it replays them, idempotently.
            log.info("history projector: offsets not committed after a rebalance; the batch will be replayed")
        except KafkaError as exc:
            log.warning("history projector: commit failed (%s); the batch may be replayed", exc)

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; True when the projector is stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _close_own(self, store: HistoryStore) -> None:
        if store is not self._given_store:
            store.close()


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except Exception:
        log.debug("ignored during history projector shutdown", exc_info=True)


def _utc(moment: datetime) -> datetime:
    """A producer's naive timestamp is taken as UTC (as the engine does with deadlines)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
