"""`RecordRelay` commits a batch only after its handler returned: a failed batch is handled again."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from aiokafka.errors import KafkaTimeoutError

from app.connectors.relay import Record, RecordRelay, RelaySettings
from tests.integration.kafka_helpers import create_topics, produce, unique, wait_for

pytestmark = pytest.mark.integration

FAST = RelaySettings(retry_s=0.1, poll_ms=50)


async def test_a_batch_whose_producing_failed_is_handled_again_and_committed_once_it_succeeds(
    kafka_bootstrap: str,
) -> None:
    topic, group = unique("relay-in"), unique("relay-group")
    await create_topics(kafka_bootstrap, [topic])
    await produce(kafka_bootstrap, topic, [(None, f"m{i}".encode()) for i in range(5)])
    handled: list[list[bytes]] = []

    async def flaky(records: Sequence[Record]) -> None:
        handled.append([r.value for r in records])
        if len(handled) == 1:
            raise KafkaTimeoutError()  # the broker did not take the batch

    relay = RecordRelay(kafka_bootstrap, [topic], group_id=group, client_id="t", handle=flaky, settings=FAST)
    await relay.start()
    try:
        await wait_for(lambda: sum(len(batch) for batch in handled[1:]) >= 5, 60, what="the batch handled again")
    finally:
        await relay.stop()
    assert handled[0][0] == b"m0" and handled[1][0] == b"m0"  # again from the batch's first record
    assert sorted(v for batch in handled[1:] for v in batch) == [f"m{i}".encode() for i in range(5)]

    # The same group after a restart: the committed records are not handled again, a new one is.
    again: list[bytes] = []

    async def record(records: Sequence[Record]) -> None:
        again.extend(r.value for r in records)

    await produce(kafka_bootstrap, topic, [(None, b"m5")])
    relay = RecordRelay(kafka_bootstrap, [topic], group_id=group, client_id="t", handle=record, settings=FAST)
    await relay.start()
    try:
        await wait_for(lambda: bool(again), 60, what="the new record")
    finally:
        await relay.stop()
    assert again == [b"m5"]
