"""Reading a request record, and the DLQ record written when it cannot be read.

`decode_request` turns the bytes of one record into a `RunRequest` or raises
`PoisonRecord` with the reason a human needs to fix it. Anything that makes a record
unrunnable is poison: a tombstone, bytes over the size limit, invalid UTF-8, invalid
JSON, a value that is not a valid `RunRequest`, an agent that is not the topic's.
A poison record goes to `runs.dlq` as a `DeadLetter` carrying its original bytes.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.contracts import RunRequest
from app.contracts.errors import BadInputError, ErrorCategory
from app.contracts.runs import utc_now


class PoisonRecord(BadInputError):
    """A record that is no valid RunRequest: it goes to the DLQ, never to a run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeadLetter(BaseModel):
    """One record on `runs.dlq`: where it came from, why, and its bytes to replay or inspect."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    category: ErrorCategory = ErrorCategory.BAD_INPUT
    reason: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None = None
    value_b64: str | None = None
    value_size: int = 0
    run_id: str | None = Field(default=None, description="When the record was readable enough to have one.")
    received_at: datetime = Field(default_factory=utc_now)

    @classmethod
    def for_record(
        cls,
        reason: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        run_id: str | None = None,
    ) -> DeadLetter:
        return cls(
            reason=reason,
            topic=topic,
            partition=partition,
            offset=offset,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            value_b64=base64.b64encode(value).decode() if value is not None else None,
            value_size=len(value or b""),
            run_id=run_id,
        )

    def original_value(self) -> bytes | None:
        return base64.b64decode(self.value_b64) if self.value_b64 is not None else None


def _short(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def decode_request(value: bytes | None, expected_agents: frozenset[str], max_bytes: int) -> RunRequest:
    """The request in `value`, or `PoisonRecord` saying why there is none."""
    if value is None:
        raise PoisonRecord("tombstone: the record has no value")
    if len(value) == 0:
        raise PoisonRecord("empty value")
    if len(value) > max_bytes:
        raise PoisonRecord(f"oversize: {len(value)} bytes > limit {max_bytes}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PoisonRecord(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise PoisonRecord(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PoisonRecord(f"not a run request: expected a JSON object, got {type(data).__name__}")
    try:
        request = RunRequest.model_validate(data)
    except ValidationError as exc:
        raise PoisonRecord(f"invalid run request: {_short(exc)}") from None
    except RecursionError:
        raise PoisonRecord("invalid run request: nested too deeply") from None
    if request.agent not in expected_agents:
        raise PoisonRecord(
            f"unknown agent {request.agent!r} on this topic (expected {', '.join(sorted(expected_agents))})"
        )
    return request


def run_id_hint(value: bytes | None) -> str | None:
    """The run id of an unreadable record, when it has one: DLQ tooling groups by it."""
    try:
        data = json.loads(value or b"")
    except (ValueError, RecursionError):
        return None
    run_id = data.get("run_id") if isinstance(data, dict) else None
    return run_id if isinstance(run_id, str) else None
