"""The spans queued when the outbox stops are still sent: a worker stopping right after its
last runs keeps their traces."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer

from app.streams.naming import TopicNames
from app.streams.outbox import Outbox
from tests.integration.kafka_helpers import create_topics, unique, wait_for
from tests.unit.observability.history_samples import llm_run_spans

pytestmark = pytest.mark.integration


async def test_spans_queued_at_stop_are_still_sent(kafka_bootstrap: str) -> None:
    names = TopicNames(unique("outbox") + ".")
    await create_topics(kafka_bootstrap, [names.traces])
    spans = llm_run_spans("run-1") + llm_run_spans("run-2")
    outbox = Outbox(kafka_bootstrap, names)
    await outbox.start()
    for event in spans:
        outbox.span(event)  # queued: the sender has not had a turn yet
    await outbox.stop()

    consumer = AIOKafkaConsumer(names.traces, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen: list[bytes] = []
    try:

        async def read() -> bool:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(record.value for record in records)
            return len(seen) >= len(spans)

        await wait_for(read, 30, what="every queued span on runs.traces")
    finally:
        await consumer.stop()
    assert sorted(seen) == sorted(event.model_dump_json().encode() for event in spans)
