"""The JSON body a receiver gets: the run as a caller sees it, without Ferry's internals."""

from __future__ import annotations

import json
from typing import Any

from app.contracts import RunResult

ENVELOPE_FIELDS = frozenset(
    {
        "run_id",
        "agent",
        "status",
        "output",
        "partial",
        "error",
        "usage",
        "started_at",
        "ended_at",
        "duration_ms",
        "deployment",
        "tenant",
        "trigger",
    }
)


def envelope(result: RunResult) -> dict[str, Any]:
    return result.model_dump(mode="json", include=set(ENVELOPE_FIELDS))


def body_of(envelope: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent: compact, keys in a fixed order."""
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
