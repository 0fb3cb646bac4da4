"""A faust-streaming agent on the real broker: every message in comes out, transformed."""

from __future__ import annotations

import json

import faust

from tests.integration.kafka_helpers import collect, create_topics, produce, unique

MESSAGES = 300


async def test_faust_agent_forwards_every_message_on_the_real_broker(kafka_bootstrap: str, tmp_path) -> None:
    source, sink = unique("roundtrip-in"), unique("roundtrip-out")
    await create_topics(kafka_bootstrap, [source, sink], partitions=3)
    app = faust.App(
        unique("ferry-roundtrip"),
        broker=f"kafka://{kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        datadir=str(tmp_path),
    )
    source_topic = app.topic(source, value_serializer="raw")
    sink_topic = app.topic(sink, value_serializer="raw")

    @app.agent(source_topic)
    async def double(stream):
        async for value in stream:
            number = json.loads(value)["n"]
            await sink_topic.send(value=json.dumps({"n": number, "doubled": number * 2}).encode())

    await produce(
        kafka_bootstrap,
        source,
        ((str(i).encode(), json.dumps({"n": i}).encode()) for i in range(MESSAGES)),
    )
    await app.start()
    try:
        received = await collect(kafka_bootstrap, sink, MESSAGES, timeout=90)
    finally:
        await app.stop()

    results = sorted((json.loads(value) for value in received), key=lambda r: r["n"])
    assert len(results) == MESSAGES
    assert results == [{"n": i, "doubled": 2 * i} for i in range(MESSAGES)]
