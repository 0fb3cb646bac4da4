"""`DeploymentLog`: the compacted `ferry.deployments` topic, read whole and written one record at a time.

One partition, so the records keep their order (a deployment is always read before the
active state that names it) and a reader knows it has everything once it reached the
end offset it saw at start. `max.message.bytes` is raised on this topic only, to hold
a project up to `snapshot.MAX_SNAPSHOT_BYTES` of files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import TracebackType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from app.deploy.errors import DeploymentError
from app.deploy.records import ACTIVE_KEY, ActiveState, Deployment
from app.kafka import LongPollConsumer
from app.streams.connect import start_client
from app.streams.naming import TopicNames
from app.streams.topic_admin import apply_topics
from app.streams.topic_plan import PlannedTopic

log = logging.getLogger(__name__)

DEPLOYMENTS = "ferry.deployments"
#: Largest record on the topic (and what producers and consumers of it allow).
MAX_RECORD_BYTES = 8 * 1024 * 1024


def deployments_topic(names: TopicNames) -> str:
    return names.prefix + DEPLOYMENTS


def planned_topic(names: TopicNames, replication: int | None = None) -> PlannedTopic:
    return PlannedTopic(
        name=deployments_topic(names),
        partitions=1,
        replication=replication or 1,
        configs={"cleanup.policy": "compact", "max.message.bytes": str(MAX_RECORD_BYTES)},
        cleanup_policy="compact",
    )


async def ensure_topic(bootstrap: str, names: TopicNames, replication: int | None = None) -> None:
    """Create the topic if missing; an existing one that is not compacted is refused."""
    report = await apply_topics(bootstrap, [planned_topic(names, replication)])
    if report.conflicts:
        raise DeploymentError("; ".join(str(c) for c in report.conflicts) + " — fix: recreate the topic")


@dataclass
class Book:
    """Everything the topic says: every deployment (by version) and the active state."""

    deployments: dict[str, Deployment] = field(default_factory=dict)
    state: ActiveState = field(default_factory=ActiveState)

    def apply(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Take one record in; whether it changed the active state."""
        key = (record.key or b"").decode(errors="replace")
        if record.value is None:
            self.deployments.pop(key, None)
            return False
        try:
            if key == ACTIVE_KEY:
                self.state = ActiveState.decode(record.value)
                return True
            deployment = Deployment.decode(record.value)
        except (ValueError, OSError, EOFError):
            log.warning("ferry.deployments: unreadable record at offset %d (key %r) skipped", record.offset, key)
            return False
        self.deployments[deployment.version] = deployment
        return False

    def get(self, version: str) -> Deployment:
        found = self.deployments.get(version)
        if found is None:
            matches = [v for v in self.deployments if v.startswith(version)]
            if len(matches) == 1:
                return self.deployments[matches[0]]
            known = ", ".join(sorted(self.deployments)[-5:]) or "none"
            raise DeploymentError(f"no deployment {version!r} (recent: {known}) — see `ferry deployments`")
        return found


def consumer(bootstrap: str, fetch_max_wait_ms: int = 100) -> AIOKafkaConsumer:
    return LongPollConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
        max_partition_fetch_bytes=MAX_RECORD_BYTES + 1024 * 1024,
        fetch_max_bytes=2 * MAX_RECORD_BYTES,
    )


class DeploymentLog:
    """Read the whole topic, publish deployments, move the active state (the CLI's side)."""

    def __init__(self, bootstrap: str, names: TopicNames, replication: int | None = None) -> None:
        self.bootstrap = bootstrap
        self.names = names
        self.topic = deployments_topic(names)
        self.replication = replication
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", max_request_size=MAX_RECORD_BYTES + 64 * 1024
        )

    async def __aenter__(self) -> DeploymentLog:
        await ensure_topic(self.bootstrap, self.names, self.replication)
        await start_client(self._producer.start, self._producer.stop, self.bootstrap)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._producer.stop()

    async def read(self) -> Book:
        """Every record up to the end of the topic as of now."""
        book = Book()
        reader = consumer(self.bootstrap)
        await start_client(reader.start, reader.stop, self.bootstrap)
        try:
            tp = TopicPartition(self.topic, 0)
            reader.assign([tp])
            end = (await reader.end_offsets([tp]))[tp]
            while await reader.position(tp) < end:
                batch = await reader.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    book.apply(record)
        finally:
            await reader.stop()
        return book

    async def publish(self, deployment: Deployment) -> None:
        value = deployment.encode()
        if len(value) > MAX_RECORD_BYTES:
            raise DeploymentError(
                f"deployment {deployment.version} is {len(value):,} bytes compressed, over {MAX_RECORD_BYTES:,}"
            )
        await (await self._producer.send(self.topic, key=deployment.version.encode(), value=value))

    async def set_state(self, state: ActiveState) -> None:
        await (await self._producer.send(self.topic, key=ACTIVE_KEY.encode(), value=state.encode()))
