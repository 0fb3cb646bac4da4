"""S3 "object created" notifications arriving on a Kafka topic → runs of the objects.

An S3-compatible store sends its event notifications (S3's event JSON: `Records[]` with
`eventName`, `s3.bucket.name`, `s3.object.key` URL-encoded, `size`, `eTag`) to a Kafka
topic, directly (MinIO, Ceph) or through a bridge (S3 → SQS/SNS/EventBridge → Kafka). One
consumer group (`<app-id>.s3-events`) reads those topics from their start, so events sent
before Ferry first ran are not lost; each `ObjectCreated:*` event for a bucket, prefix
and suffix of an `s3` trigger in `mode: events` starts one run, its id derived from the
object and its ETag (the same upload notified twice is one run). Offsets are committed
after the batch's requests are on their topics.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from urllib.parse import unquote_plus

from app.connectors.relay import Record, RecordRelay, RelaySettings
from app.connectors.triggers.s3_objects import Bucket, ObjectRefused, StoredObject
from app.project.connectors import S3ConnectorSpec
from app.streams.client import Submitter

log = logging.getLogger(__name__)


def created_objects(value: bytes | None) -> Iterator[StoredObject]:
    """The objects an event record says were created (none for other events or other JSON)."""
    try:
        event = json.loads(value or b"")
    except ValueError:
        return
    records = event.get("Records") if isinstance(event, dict) else None
    for entry in records if isinstance(records, list) else ():
        if not isinstance(entry, dict) or not str(entry.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = entry.get("s3")
        s3 = s3 if isinstance(s3, dict) else {}
        bucket_info, stored = s3.get("bucket"), s3.get("object")
        bucket = bucket_info.get("name") if isinstance(bucket_info, dict) else None
        stored = stored if isinstance(stored, dict) else {}
        key = stored.get("key")
        if isinstance(bucket, str) and isinstance(key, str):
            yield StoredObject(
                bucket=bucket,
                key=unquote_plus(key),  # S3 URL-encodes keys in events, spaces as '+'
                etag=str(stored.get("eTag") or stored.get("etag") or "").strip('"'),
                size=int(stored.get("size") or 0),
            )


def s3_events_group(app_id: str) -> str:
    return f"{app_id}.s3-events"


class S3EventTrigger:
    def __init__(
        self,
        bootstrap: str,
        submitter: Submitter,
        specs: Sequence[S3ConnectorSpec],
        *,
        group_id: str,
        buckets: dict[str, Bucket] | None = None,
        settings: RelaySettings | None = None,
    ) -> None:
        self.specs = tuple(spec for spec in specs if spec.mode == "events")
        self.started = 0
        self._submitter = submitter
        self._buckets = buckets or {spec.name: Bucket(spec) for spec in self.specs}
        topics = sorted({spec.events_topic for spec in self.specs if spec.events_topic})
        self.relay = RecordRelay(
            bootstrap,
            topics,
            group_id=group_id,
            client_id="ferry-s3-events",
            handle=self._start_runs,
            settings=settings,
        )

    async def start(self) -> None:
        await self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()

    async def _start_runs(self, records: Sequence[Record]) -> None:
        sent = []
        for record in records:
            for stored in created_objects(record.value):
                for spec in self.specs:
                    if spec.events_topic != record.topic or spec.bucket != stored.bucket or not spec.wants(stored.key):
                        continue
                    try:
                        request = await self._buckets[spec.name].request(stored)
                    except ObjectRefused as exc:
                        log.warning(
                            "s3 %s: s3://%s/%s not started: %s", spec.name, stored.bucket, stored.key, exc.reason
                        )
                        continue
                    sent.append(await self._submitter.send(request))
        for delivery in sent:
            await delivery
        self.started += len(sent)
