"""`ferry webhooks replay`: send the entries of `webhooks.dlq` again.

Reads the DLQ under its own consumer group (`<app-id>.webhooks.replay`), so an entry
replayed once is not replayed by the next run, and stops at the end the topic had when
the replay began: entries that fail again go back to the DLQ (with the new reason and
the attempts summed) and wait for the next replay instead of looping. Each entry is sent
with its original body and delivery id, so a receiver that got it after all drops it.
Offsets are committed after each batch is delivered or dead-lettered again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from app.connectors.webhook.config import Destinations, WebhookSettings
from app.connectors.webhook.dead_letters import WebhookDeadLetter
from app.connectors.webhook.delivery import Deliverer
from app.connectors.webhook.service import DeadLetterSink, WebhookTopics, deliver_or_dead_letter, start_producer
from app.streams.connect import start_client, topic_partitions

log = logging.getLogger(__name__)


def replay_group(app_id: str) -> str:
    return f"{app_id}.webhooks.replay"


@dataclass
class ReplayReport:
    delivered: int = 0
    failed: int = 0  # back in the DLQ
    unreadable: int = 0


async def replay_dead_letters(
    bootstrap: str,
    topics: WebhookTopics,
    destinations: Destinations,
    group_id: str,
    *,
    limit: int | None = None,
    settings: WebhookSettings | None = None,
) -> ReplayReport:
    """Replay up to `limit` DLQ entries (all there are when None)."""
    settings = settings or destinations.settings
    report = ReplayReport()
    partitions = await topic_partitions(bootstrap, topics.webhooks_dlq, timeout=settings.connect_timeout_s)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id="ferry-webhooks-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer.assign(partitions)
    await start_client(consumer.start, consumer.stop, bootstrap, timeout=settings.connect_timeout_s)
    try:
        producer = await start_producer(bootstrap, settings)
    except BaseException:
        await consumer.stop()
        raise
    sink = DeadLetterSink(producer, topics.webhooks_dlq)
    try:
        async with Deliverer(destinations.allowed, settings.per_destination) as deliverer:
            ends = await consumer.end_offsets(partitions)
            while limit is None or _handled(report) < limit:
                remaining = [p for p in partitions if await consumer.position(p) < ends[p]]
                if not remaining:
                    break
                want = (
                    settings.max_in_flight if limit is None else min(settings.max_in_flight, limit - _handled(report))
                )
                fetched = await consumer.getmany(*remaining, timeout_ms=settings.poll_ms, max_records=want)
                entries: list[WebhookDeadLetter] = []
                last: dict[TopicPartition, int] = {}
                for partition, records in fetched.items():
                    for record in records:
                        if record.offset >= ends[partition] or len(entries) + report.unreadable >= want:
                            break
                        last[partition] = record.offset + 1
                        try:
                            entries.append(WebhookDeadLetter.model_validate_json(record.value or b""))
                        except (ValidationError, ValueError):
                            report.unreadable += 1
                            log.warning("webhooks replay: %s@%d is no DLQ entry, skipped", partition, record.offset)
                outcomes = await asyncio.gather(*(_replay_one(deliverer, sink, destinations, e) for e in entries))
                report.delivered += sum(outcomes)
                report.failed += len(outcomes) - sum(outcomes)
                if last:
                    await consumer.commit(last)
                for partition, records in fetched.items():
                    if records:  # what the limit or the end cut off is read again next time
                        consumer.seek(partition, last.get(partition, records[0].offset))
    finally:
        await producer.stop()
        await consumer.stop()
    return report


def _handled(report: ReplayReport) -> int:
    return report.delivered + report.failed + report.unreadable


async def _replay_one(
    deliverer: Deliverer, sink: DeadLetterSink, destinations: Destinations, entry: WebhookDeadLetter
) -> bool:
    destination = destinations.by_identity(entry.destination, entry.url)
    if destination is None:
        await sink.put(
            entry.model_copy(update={"reason": f"{entry.destination} is no longer a connector of this project"})
        )
        return False
    outcome = await deliver_or_dead_letter(
        deliverer, sink, destination, entry.run_id, entry.envelope, attempts_before=entry.attempts
    )
    return outcome.delivered
