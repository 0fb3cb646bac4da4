"""`InboundConnector`: records of existing topics → run requests of the agents they trigger.

    inbound = InboundConnector(bootstrap, project, TopicNames(prefix), specs, group_id=inbound_group(app_id))
    await inbound.start()   # ... await inbound.stop()

Each `type: inbound` connector names a topic and an agent. Every record of the topic
becomes one `RunRequest`: its value is the input (a JSON object as it is, any other value
as `{"message": value}`), its Kafka metadata is under `_kafka` (topic, partition, offset,
timestamp, key), and, with `key_as_concurrency_key`, its key keys the request (one key,
one partition, in order). The run id derives from the connector, topic, partition and
offset, so a record relayed twice (a crash between produce and commit) is the same run.

One consumer in its own group (`<app-id>.inbound`) reads every inbound topic; it starts
at the topics' end (`latest`): declaring a connector on a topic that already holds a
year of records does not run the agent a million times. A batch's offsets are committed
only once all its requests are on the agents' request topics (acks=all).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from app.connectors.relay import Record, RecordRelay, RelaySettings
from app.contracts import RunRequest
from app.contracts.runs import Trigger
from app.project.connectors import InboundConnectorSpec
from app.project.project import Project
from app.streams.client import Submitter
from app.streams.naming import TopicNames

log = logging.getLogger(__name__)

KAFKA_METADATA = "_kafka"
TRIGGER_SOURCE = "kafka"


def inbound_group(app_id: str) -> str:
    return f"{app_id}.inbound"


def inbound_specs(project: Project) -> list[InboundConnectorSpec]:
    return [spec for spec in project.connectors.values() if isinstance(spec, InboundConnectorSpec)]


def record_key(record: Record) -> str | None:
    key = record.key
    if key is None:
        return None
    try:
        return str(key.decode()) if isinstance(key, bytes) else str(key)
    except UnicodeDecodeError:
        return base64.b64encode(key).decode()


def record_input(record: Record) -> dict[str, Any]:
    """The run input of one record: its value (an object as it is), then `_kafka`."""
    value = _decoded(record.value)
    data: dict[str, Any] = dict(value) if isinstance(value, dict) else {"message": value}
    data[KAFKA_METADATA] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(),
        "key": record_key(record),
    }
    return data


def inbound_request(spec: InboundConnectorSpec, record: Record) -> RunRequest:
    where = f"{record.topic}:{record.partition}:{record.offset}"
    return RunRequest.new(
        spec.agent,
        record_input(record),
        tenant=spec.tenant,
        idempotency_key=f"inbound:{spec.name}:{where}",
        trigger=Trigger(
            source=TRIGGER_SOURCE,
            metadata={
                "connector": spec.name,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
        ),
    )


def _decoded(raw: Any) -> Any:
    """JSON when the bytes are JSON, else the text, else base64 of bytes that are not UTF-8."""
    if raw is None or not isinstance(raw, bytes):
        return raw
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode()
    try:
        return json.loads(text)
    except ValueError:
        return text


class InboundConnector:
    def __init__(
        self,
        bootstrap: str,
        project: Project,
        names: TopicNames,
        specs: Sequence[InboundConnectorSpec],
        *,
        group_id: str = "ferry.inbound",
        settings: RelaySettings | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.specs = tuple(specs)
        self.submitted = 0
        self._by_topic: dict[str, list[InboundConnectorSpec]] = {}
        for spec in self.specs:
            self._by_topic.setdefault(spec.topic, []).append(spec)
        self._submitter = Submitter(bootstrap, project, names, linger_ms=5)
        self.relay = RecordRelay(
            bootstrap,
            sorted(self._by_topic),
            group_id=group_id,
            client_id="ferry-inbound",
            handle=self._submit,
            offset_reset="latest",
            settings=settings,
        )

    @property
    def topics(self) -> list[str]:
        return sorted(self._by_topic)

    @property
    def agents(self) -> list[str]:
        return sorted({spec.agent for spec in self.specs})

    async def start(self) -> None:
        """Raises `ServiceUnreachableError` when the broker does not answer; then nothing runs."""
        await self._submitter.__aenter__()
        try:
            await self.relay.start()
        except BaseException:
            await self._submitter.__aexit__(None, None, None)
            raise

    async def stop(self) -> None:
        await self.relay.stop()
        await self._submitter.__aexit__(None, None, None)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the consumer holds its partitions and knows where it starts (tests, `latest`)."""
        await asyncio.wait_for(self.relay.ready.wait(), timeout)

    async def _submit(self, records: Sequence[Record]) -> None:
        sent: list[asyncio.Future[object]] = []
        for record in records:
            for spec in self._by_topic.get(record.topic, ()):
                if record.value is None:
                    continue  # a tombstone deletes a key; it asks for no run
                request = inbound_request(spec, record)
                key = record_key(record) if spec.key_as_concurrency_key else None
                sent.append(await self._submitter.send(request, key))
        await asyncio.gather(*sent)
        self.submitted += len(sent)
