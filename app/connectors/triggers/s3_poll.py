"""Polling a bucket for stores that cannot send events: each object started once, a cursor in Kafka.

A listing is in key order, not upload order, so no "start after this key" cursor sees an
object uploaded later under a smaller key. The cursor is instead a time and a memory:
`watermark`, before which every object was seen, and `recent`, the objects seen since
(key and ETag → their timestamp). A listing starts the objects that are newer than the
watermark and not in `recent`; then the watermark moves to `late_upload_s` before the
store's newest timestamp (an upload's timestamp is when it began: a large one can show up
in a listing well after a small one stamped later), and `recent` forgets what falls
behind it. Each poll lists the whole prefix: fine for thousands of objects, slow for
millions (use events there).

The first poll of a trigger that has no cursor starts every object already in the bucket.
Objects a trigger refuses (too large, wrong type) are remembered like the others, so
their warning is logged once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.errors import KafkaError

from app.connectors.triggers.s3_objects import Bucket, ObjectRefused, StoredObject
from app.contracts import RunRequest
from app.contracts.errors import ServiceUnreachableError
from app.project.connectors import S3ConnectorSpec

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Submit = Callable[[RunRequest], Awaitable[None]]
Save = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class PollCursor:
    watermark: datetime = _EPOCH
    recent: dict[str, str] = field(default_factory=dict)  # identity → ISO timestamp

    @classmethod
    def of(cls, saved: Any) -> PollCursor:
        if not isinstance(saved, dict):
            return cls()
        mark = saved.get("watermark")
        recent = saved.get("recent")
        return cls(
            watermark=datetime.fromisoformat(mark) if isinstance(mark, str) else _EPOCH,
            recent={str(k): str(v) for k, v in recent.items()} if isinstance(recent, dict) else {},
        )

    def saved(self) -> dict[str, Any]:
        return {"watermark": self.watermark.isoformat(), "recent": self.recent}


def new_objects(listing: Sequence[StoredObject], cursor: PollCursor) -> list[StoredObject]:
    """The objects of a listing not started yet, oldest first."""
    fresh = [
        o
        for o in listing
        if (o.last_modified or datetime.now(UTC)) > cursor.watermark and o.identity not in cursor.recent
    ]
    return sorted(fresh, key=lambda o: (o.last_modified or _EPOCH, o.key))


def advanced(
    cursor: PollCursor, started: Sequence[StoredObject], listing: Sequence[StoredObject], late_s: float
) -> PollCursor:
    """The cursor after `started` were started: the watermark moved up, `recent` trimmed behind it."""
    recent = dict(cursor.recent)
    for stored in started:
        recent[stored.identity] = (stored.last_modified or datetime.now(UTC)).isoformat()
    newest = max((o.last_modified for o in listing if o.last_modified is not None), default=None)
    watermark = cursor.watermark
    if newest is not None:
        watermark = max(watermark, newest - timedelta(seconds=late_s))
    kept = {identity: stamp for identity, stamp in recent.items() if datetime.fromisoformat(stamp) > watermark}
    return PollCursor(watermark=watermark, recent=kept)


def state_key(spec: S3ConnectorSpec) -> str:
    return f"s3:{spec.name}"


async def poll_bucket(spec: S3ConnectorSpec, bucket: Bucket, state: dict[str, Any], submit: Submit, save: Save) -> None:
    """List, start what is new, save the cursor; every `poll_interval_s`, until cancelled."""
    cursor = PollCursor.of(state.get(state_key(spec)))
    while True:
        try:
            cursor = await poll_once(spec, bucket, cursor, submit, save)
        except (ServiceUnreachableError, KafkaError, TimeoutError) as exc:
            # the store or the broker is away: the cursor did not move, the next poll redoes it
            log.warning("s3 %s: %s; listing again in %g s", spec.name, exc, spec.poll_interval_s)
        await asyncio.sleep(spec.poll_interval_s)


async def poll_once(
    spec: S3ConnectorSpec, bucket: Bucket, cursor: PollCursor, submit: Submit, save: Save
) -> PollCursor:
    listing = await bucket.listing()
    fresh = new_objects(listing, cursor)
    for stored in fresh:
        try:
            request = await bucket.request(stored)
        except ObjectRefused as exc:
            log.warning("s3 %s: s3://%s/%s not started: %s", spec.name, stored.bucket, stored.key, exc.reason)
            continue
        await submit(request)
    after = advanced(cursor, fresh, listing, spec.late_upload_s)
    if fresh or after.watermark != cursor.watermark:
        await save(state_key(spec), after.saved())
        if fresh:
            log.info("s3 %s: %d new object(s) in s3://%s/%s", spec.name, len(fresh), spec.bucket, spec.prefix)
    return after
