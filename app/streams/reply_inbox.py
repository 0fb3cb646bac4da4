"""A live caller's side of its runs: one reply topic per API instance, events handed to waiters.

The instance creates its own topic (`ferry.replies.<instance>`: one partition, short
retention, so a topic left behind by an instance that died cleans itself) and follows
it from its end. A chat socket asks to `expect(run_id)` before it submits the run, so
no event can arrive unseen; events of a run nobody expects any more (a socket that
closed) are dropped. The instance deletes its topic when it stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from pydantic import ValidationError

from app.contracts import ReplyEvent
from app.contracts.errors import ConfigError, FerryError, ServiceUnreachableError
from app.streams.connect import start_client, topic_partitions
from app.streams.naming import TopicNames
from app.streams.topic_tail import TopicTail

log = logging.getLogger(__name__)

#: A reply topic keeps records this long: a chat answer is read within seconds.
RETENTION_MS = 10 * 60 * 1000


class ReplyInbox:
    def __init__(self, bootstrap: str, names: TopicNames, instance: str, *, replication: int = 1) -> None:
        self.bootstrap = bootstrap
        self.topic = names.replies(instance)
        self._replication = replication
        self._waiting: dict[str, asyncio.Queue[ReplyEvent]] = {}
        self._tail: TopicTail | None = None

    async def start(self) -> None:
        await self._create_topic()
        await self._until_known()
        tail = TopicTail(self.bootstrap, self.topic, self._hand_over, keep=1, fetch_max_wait_ms=500)
        await tail.start()
        self._tail = tail

    async def stop(self) -> None:
        tail, self._tail = self._tail, None
        if tail is not None:
            await tail.stop()
            await self._delete_topic()

    @contextmanager
    def expect(self, run_id: str) -> Iterator[asyncio.Queue[ReplyEvent]]:
        """The queue of `run_id`'s events for as long as the caller waits on them."""
        queue: asyncio.Queue[ReplyEvent] = asyncio.Queue()
        self._waiting[run_id] = queue
        try:
            yield queue
        finally:
            if self._waiting.get(run_id) is queue:
                del self._waiting[run_id]

    def _hand_over(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            if record.value is None:
                continue
            try:
                event = ReplyEvent.model_validate_json(record.value)
            except ValidationError:
                log.warning("reply topic %s: record at offset %d is not a reply event", self.topic, record.offset)
                continue
            queue = self._waiting.get(event.run_id)
            if queue is not None:
                queue.put_nowait(event)

    async def _admin(self) -> AIOKafkaAdminClient:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await start_client(admin.start, admin.close, self.bootstrap)
        return admin

    async def _create_topic(self) -> None:
        admin = await self._admin()
        try:
            configs = {"retention.ms": str(RETENTION_MS), "cleanup.policy": "delete"}
            await admin.create_topics([NewTopic(self.topic, 1, self._replication, topic_configs=configs)])
        except TopicAlreadyExistsError:
            pass  # an instance restarted under the same name: its old events are past the end
        finally:
            await admin.close()

    async def _until_known(self, timeout: float = 15.0) -> None:
        """A topic just created is not in every broker's metadata at once: wait until it is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                await topic_partitions(self.bootstrap, self.topic)
                return
            except ServiceUnreachableError:
                raise
            except ConfigError:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(0.1)

    async def _delete_topic(self) -> None:
        try:
            admin = await self._admin()
        except (FerryError, KafkaError, OSError) as exc:  # the broker is gone: retention removes the topic
            log.warning("reply topic %s not deleted: %s", self.topic, exc)
            return
        try:
            await admin.delete_topics([self.topic])
        except KafkaError as exc:
            log.warning("reply topic %s not deleted: %s", self.topic, exc)
        finally:
            await admin.close()
