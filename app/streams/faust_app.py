"""The faust app of a worker: one stream processor per consumed topic, tuned for latency.

faust-streaming builds its aiokafka consumer with `fetch_max_wait_ms=1500` and, without
tables, the round-robin assignor; neither is a setting. `FerryApp` swaps in a consumer
thread that sets our fetch wait (PITFALLS: 1500 ms adds up per hop on several
partitions) and `CoPartitionedAssignor` on the consumer before it starts. Each topic's
processor iterates `stream.noack().events()` and acks an event only once its outputs
are produced, so faust commits an offset only after its run's result exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport

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


class _Consumer(Consumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


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
            async for event in stream.noack().events():
                await handle(FaustRecord(event), binding)

        app.agent(topic, name=f"ferry.{binding.topic}")(consume)
    return app
