"""`SinkFeeder`: `runs.results` → the topics of the project's fed Kafka Connect sinks.

    feeder = SinkFeeder(bootstrap, TopicNames(prefix), feeds_of(project), group_id=sinks_group(app_id))
    await feeder.start()   # ... await feeder.stop()

Each Kafka Connect connector with a `feed` (connectors/*.yaml) reads one topic that Ferry
fills: every run result the feed selects becomes one schema'd record there (see
`records.py`), keyed by the feed's key column so the sink upserts and the topic can be
compacted. The feeder is a consumer of `runs.results` in its own group
(`<app-id>.sinks`); a batch's offset is committed only once all its records are on
their sink topics (acks=all), so a crash feeds a result again, never loses it, and the
sink's upsert makes the repeat harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from app.connectors.relay import Record, RecordRelay, RelaySettings
from app.connectors.results import decode_result
from app.connectors.sinks.records import feed_record, value_schema
from app.contracts import RunResult
from app.project.connectors import FeedSpec, KafkaConnectSpec
from app.project.project import Project
from app.streams.connect import start_client
from app.streams.naming import TopicNames

log = logging.getLogger(__name__)


def sinks_group(app_id: str) -> str:
    return f"{app_id}.sinks"


@dataclass(frozen=True)
class Feed:
    """One fed connector: its (prefixed) topic and what goes on it."""

    connector: str
    topic: str
    spec: FeedSpec


def feeds_of(project: Project, names: TopicNames) -> list[Feed]:
    """The project's fed Kafka Connect connectors; their topics carry the deployment's prefix."""
    return [
        Feed(spec.name, names.prefix + spec.topics[0], spec.feed)
        for spec in project.connectors.values()
        if isinstance(spec, KafkaConnectSpec) and spec.feed is not None
    ]


@dataclass
class FeedStats:
    fed: int = 0
    undecodable: int = 0


class SinkFeeder:
    def __init__(
        self,
        bootstrap: str,
        names: TopicNames,
        feeds: Sequence[Feed],
        *,
        group_id: str = "ferry.sinks",
        settings: RelaySettings | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.feeds = tuple(feeds)
        self.settings = settings or RelaySettings()
        self.stats = FeedStats()
        self._schemas = {feed.connector: value_schema(feed.spec, _schema_name(feed.connector)) for feed in feeds}
        self._producer: AIOKafkaProducer | None = None
        self.relay = RecordRelay(
            bootstrap,
            [names.results],
            group_id=group_id,
            client_id="ferry-sinks",
            handle=self._feed,
            offset_reset="earliest",  # a new group feeds every result the topic still holds
            settings=self.settings,
        )

    @property
    def topics(self) -> list[str]:
        return sorted({feed.topic for feed in self.feeds})

    async def start(self) -> None:
        """Raises `ServiceUnreachableError` when the broker does not answer; then nothing runs."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", client_id="ferry-sinks")
        await start_client(producer.start, producer.stop, self.bootstrap, timeout=self.settings.connect_timeout_s)
        self._producer = producer
        try:
            await self.relay.start()
        except BaseException:
            self._producer = None
            await producer.stop()
            raise

    async def stop(self) -> None:
        await self.relay.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def _feed(self, records: Sequence[Record]) -> None:
        producer = self._producer
        if producer is None:
            raise RuntimeError("the sink feeder is not started")
        sent: list[asyncio.Future[object]] = []
        for record in records:
            result = self._decode(record)
            if result is None:
                continue
            for feed in self.feeds:
                made = feed_record(feed.spec, self._schemas[feed.connector], result)
                if made is not None:
                    sent.append(await producer.send(feed.topic, key=made[0], value=made[1]))
        await asyncio.gather(*sent)
        self.stats.fed += len(sent)

    def _decode(self, record: Record) -> RunResult | None:
        return decode_result(record, self.stats, "sinks")


def _schema_name(connector: str) -> str:
    return "ferry." + "".join(c if c.isalnum() else "_" for c in connector)
