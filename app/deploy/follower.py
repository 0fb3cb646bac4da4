"""`DeploymentFollower`: a worker's view of `ferry.deployments`, read whole at start, then followed.

No consumer group (every worker needs every record) and no offsets kept: the topic is
compacted and small, so a worker reads it from the beginning each time it starts. Each
change of the active state is handed to `on_change` in order, one at a time (a slow
load of one version delays the next change rather than racing it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.deploy.log import Book, consumer, deployments_topic, ensure_topic
from app.kafka import IDLE_POLL_MS
from app.streams.connect import start_client
from app.streams.naming import TopicNames

log = logging.getLogger("ferry.deployments")


class DeploymentFollower:
    def __init__(
        self,
        bootstrap: str,
        names: TopicNames,
        on_change: Callable[[Book], Awaitable[None]],
        *,
        replication: int | None = None,
        fetch_max_wait_ms: int = 100,
    ) -> None:
        """`fetch_max_wait_ms` bounds how late a worker sees an activation or a rollback."""
        self.bootstrap = bootstrap
        self.names = names
        self.book = Book()
        self._on_change = on_change
        self._replication = replication
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the topic to its end and apply the active state found, then follow it."""
        await ensure_topic(self.bootstrap, self.names, self._replication)
        reader = consumer(self.bootstrap, self._fetch_max_wait_ms)
        await start_client(reader.start, reader.stop, self.bootstrap)
        self._consumer = reader
        try:
            tp = TopicPartition(deployments_topic(self.names), 0)
            reader.assign([tp])
            end = (await reader.end_offsets([tp]))[tp]
            while await reader.position(tp) < end:
                for record in (await reader.getmany(tp, timeout_ms=1000)).get(tp, []):
                    self.book.apply(record)
            await self._on_change(self.book)
            self._task = asyncio.create_task(self._follow(reader, tp), name="deployments follower")
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        task, self._task = self._task, None
        reader, self._consumer = self._consumer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if reader is not None:
            await reader.stop()

    async def _follow(self, reader: AIOKafkaConsumer, tp: TopicPartition) -> None:
        while True:
            try:
                batch = await reader.getmany(tp, timeout_ms=IDLE_POLL_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker away: aiokafka reconnects, the next fetch tells
                log.warning("ferry.deployments: fetch failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            changed = False
            for record in batch.get(tp, []):
                changed = self.book.apply(record) or changed
            if changed:
                try:
                    await self._on_change(self.book)
                except Exception:
                    log.exception("deployments: applying the active state %s failed", self.book.state.active)
