"""A round trip through the broker with Ferry's own wire format: the stack's first proof of life."""

from __future__ import annotations

import time
import uuid

from pydantic import BaseModel

from app.contracts import RunRequest


class RoundTripReport(BaseModel):
    topic: str
    sent: int
    received: int
    seconds: float


async def broker_round_trip(bootstrap: str, count: int = 20, timeout: float = 30) -> RoundTripReport:
    """Produce `count` RunRequests to a fresh topic and read every one of them back."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"ferry.smoke.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    started = time.monotonic()
    requests = [RunRequest.new("smoke", {"n": n}) for n in range(count)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for request in requests:
            await producer.send(topic, key=request.run_id.encode(), value=request.model_dump_json().encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    received: set[str] = set()
    try:
        async with asyncio.timeout(timeout):
            while len(received) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    received.update(RunRequest.model_validate_json(r.value).run_id for r in records)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
    expected = {request.run_id for request in requests}
    return RoundTripReport(
        topic=topic, sent=count, received=len(received & expected), seconds=time.monotonic() - started
    )
