"""The faust app of a worker: one stream processor per consumed topic, tuned for latency.

faust-streaming builds its aiokafka consumer with `fetch_max_wait_ms=1500` and, without
tables, the round-robin assignor; neither is a setting. `FerryApp` swaps in a consumer
"thread" that runs on the worker's own loop (`_ConsumerOnLoop`) and sets our fetch wait
(PITFALLS: 1500 ms adds up per hop on several partitions; it is the wait only while a
partition is left out of the fetch under way: app/kafka/long_poll.py) and
`CoPartitionedAssignor` on the consumer before it starts. Each topic's processor iterates `stream.noack().events()` and acks an event only once its outputs
are produced, so faust commits an offset only after its run's result exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from time import monotonic
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from mode import Service
from mode.utils.futures import maybe_async

from app.kafka import long_poll
from app.streams.assignor import CoPartitionedAssignor
from app.streams.bindings import Binding
from app.streams.settings import StreamSettings


class _ConsumerThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        settings: StreamSettings = self.app.ferry_settings  # type: ignore[attr-defined]
        # Private attributes of aiokafka's consumer, read in its start(): the only way in.
        consumer._fetch_max_wait_ms = settings.fetch_max_wait_ms
        # The worker's own assignor instance (its caps in the subscription), else a bare one.
        assignor = getattr(self.app, "ferry_assignor", None) or CoPartitionedAssignor()
        consumer._partition_assignment_strategy = (assignor,)
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        settings: StreamSettings = self.app.ferry_settings  # type: ignore[attr-defined]
        long_poll(self._consumer, idle_wait_ms=settings.idle_fetch_wait_ms, busy_wait_ms=settings.fetch_max_wait_ms)


class _ConsumerOnLoop(_ConsumerThread):
    """faust's consumer "thread", run on the worker's own event loop instead of a thread of its own.

    faust runs its aiokafka consumer in a thread with a second event loop and hands every
    fetched batch, commit and rebalance callback across with a method queue: two
    `call_soon_threadsafe` hops per fetch, two keep-alive timers, and two loops taking turns
    at the GIL while runs keep the main one busy. Here every `call_thread` is a plain await,
    the rebalance callbacks call the consumer directly, and no thread or keep-alive timer is
    started; faust's own consumer code is otherwise unchanged. Requests reached their runs
    sooner at p99 and an idle worker costs less (bench/RESULTS.md, "The consumer on the
    worker's loop").
    """

    wait_for_shutdown = False  # nothing in another thread to wait for

    def __init__(self, consumer: Any, *, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(consumer, loop=loop, thread_loop=loop, **kwargs)

    async def start(self) -> None:
        await self._default_start()  # a Service's start: ServiceThread's would start a thread

    async def on_stop(self) -> None:
        await self.on_thread_stop()  # stops the aiokafka consumer

    def _stopped_set(self) -> None:
        self._stopped.set()

    async def _stop_children(self) -> None:
        await self._default_stop_children()

    async def _stop_futures(self) -> None:
        await self._default_stop_futures()

    async def _stop_exit_stacks(self) -> None:
        await self._default_stop_exit_stacks()

    @Service.task
    async def _thread_keepalive(self) -> None:
        """Replaces ServiceThread's timer, which woke the loop every second to keep a thread alive."""

    async def call_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await maybe_async(fun(*args, **kwargs))  # as the method queue: some are plain functions

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.consumer.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any, generation_id: int = 0) -> None:
        await self.consumer.on_partitions_assigned(assigned, generation_id)


class _Consumer(Consumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerOnLoop(self, loop=self.loop, beacon=self.beacon)

    async def verify_all_partitions_active(self) -> None:
        """faust's livelock check of every assigned partition, in one event-loop turn.

        faust yields before each partition's check with `self.sleep(0)`: a task, a timer and a
        cancellation each. It runs every 2.5 commit intervals (1.25 s here), so with a dozen
        partitions those yields were about a seventh of an idle worker's event-loop callbacks
        (bench/RESULTS.md, "Idle worker: fewer wake-ups"). A check reads a few attributes.
        """
        if self.should_stop:
            return
        now = monotonic()
        for tp in self.assignment():
            self.verify_event_path(now, tp)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover (faust's loop, one change)
        """faust's loop handing fetched records to the agents' channels, without its cost per record.

        faust awaits each record's delivery as `wait_first(deliver, suspend_flow.wait())`: four
        tasks, an `asyncio.wait` and two or more event-loop turns per record, so a fetched batch of
        hundreds of records trickled out at one record every few turns of a loop busy with 64 runs
        (~60-280 records/s here, whatever the model latency: bench/RESULTS.md, "Peers side by side").
        A delivery can only wait when flow is stopped (a rebalance), a channel's buffer is full, the
        producer buffer is over its limit or the conductor is updating its index: `_delivers_at_once`
        checks exactly those, and then the record is delivered directly (no await suspends); any
        other time faust's abortable `wait_first` is kept, so a rebalance still interrupts a blocked
        delivery. Everything else (offset gaps, read offsets, commit_every) is faust 0.15's code.
        """
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        acks_enabled_for = self.app.topics.acks_enabled_for
        delivers_at_once = self._delivers_at_once
        commit_every = self._commit_every
        yield_every, since_yield = 100, 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batch = getmany(timeout=1.0)
                await self.sleep(0)  # faust: getmany may return at once, turn after turn
                if not self.should_stop:
                    async for tp, message in batch:
                        since_yield += 1
                        if since_yield > yield_every:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        read = get_read_offset(tp)
                        if read is not None and offset < read:
                            continue  # faust drops a record older than one read already
                        if read and offset - read > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, read + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        if delivers_at_once(tp):
                            await callback(message)
                        else:
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                    self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return  # stopping already
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    def _delivers_at_once(self, tp: Any) -> bool:
        """Whether the conductor's callback for a record of `tp` runs to its end without waiting."""
        app = self.app
        conductor: Any = app.topics
        if self.suspend_flow.is_set() or not app.flow_control.is_active():
            return False
        buffer = app.producer.buffer
        if buffer.size > buffer.max_messages or conductor._tp_to_callback_lock.locked():
            return False
        return not any(channel.queue.full() for channel in conductor._tp_index.get(tp, ()))


class _Transport(Transport):
    Consumer = _Consumer


class FerryApp(faust.App):
    ferry_settings: StreamSettings

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


class FaustRecord:
    """A faust event seen through the processor's `Record` protocol (raw bytes, not decoded)."""

    __slots__ = ("_event",)

    def __init__(self, event: Any) -> None:
        self._event = event

    @property
    def topic(self) -> str:
        return str(self._event.message.topic)

    @property
    def partition(self) -> int:
        return int(self._event.message.partition)

    @property
    def offset(self) -> int:
        return int(self._event.message.offset)

    @property
    def key(self) -> bytes | None:
        return self._event.message.key  # type: ignore[no-any-return]

    @property
    def value(self) -> bytes | None:
        return self._event.message.value  # type: ignore[no-any-return]

    @property
    def headers(self) -> Any:
        return self._event.message.headers  # trace context (`trace_headers`)

    def ack(self) -> None:
        self._event.ack()


def _buffered_events(stream: Any, limit: int = 100) -> Iterator[tuple[Any, Any]]:
    """The events already in `stream`'s buffer (at most `limit`), taken one at a time as the
    caller asks, each with faust's bookkeeping (tracked as unacked, sensors told).

    faust's stream iterator sleeps one event-loop turn before every event, so a worker with 64
    runs in flight took one record per turn of a busy loop, however many were buffered (the
    throughput ceiling of bench/RESULTS.md, "Peers side by side"). What faust's iterator does
    per event is repeated here (`faust/_cython/streams.pyx`, `_prepare_event`), except the turn:
    an event of an earlier generation, or read while flow is stopped (a rebalance), is dropped
    unacked as faust drops it; a buffered error is left for faust's iterator to raise.
    """
    app = stream.app
    queue = stream.channel.queue
    acking_topics = app.topics._acking_topics
    consumer = app.consumer
    for _ in range(limit):
        if queue.empty() or queue._errors:
            return
        event = queue.get_nowait()
        message = event.message
        if not app.flow_control.is_active() or message.generation_id != app.consumer_generation_id:
            continue
        if message.topic in acking_topics and not message.tracked:
            message.tracked = True
            consumer.track_message(message)
        stream.events_total += 1
        yield event, stream._on_stream_event_in(message.tp, message.offset, stream, event)


def build_app(
    settings: StreamSettings,
    bindings: list[Binding],
    datadir: str,
    handle: Callable[[FaustRecord, Binding], Awaitable[None]],
) -> FerryApp:
    app = FerryApp(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        web_enabled=False,
        web_tables_enabled=False,
        autodiscover=False,
        topic_replication_factor=settings.replication or 1,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        datadir=datadir,
        stream_wait_empty=False,  # the lanes drain their own runs on a rebalance
        broker_commit_every=settings.commit_every,
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        stream_buffer_maxsize=max(64, settings.read_ahead),
    )
    app.ferry_settings = settings
    for binding in bindings:
        topic = app.topic(binding.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

        async def consume(stream: Any, binding: Binding = binding) -> None:
            events = stream.noack()
            async for event in events.events():
                await handle(FaustRecord(event), binding)
                for more, sensor_state in _buffered_events(events):  # the rest of the buffer, this turn
                    try:
                        await handle(FaustRecord(more), binding)
                    finally:
                        events._on_stream_event_out(more.message.tp, more.message.offset, events, more, sensor_state)

        app.agent(topic, name=f"ferry.{binding.topic}")(consume)
    return app
