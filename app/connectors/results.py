"""The `RunResult` a record of `runs.results` holds, for the connectors that read them."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from app.contracts import RunResult

log = logging.getLogger(__name__)


class DecodeStats(Protocol):
    undecodable: int


def decode_result(record: ConsumerRecord[Any, Any], stats: DecodeStats, reader: str) -> RunResult | None:
    """The result; None for a tombstone, and None counted and logged as skipped for a value
    that is not one (a stranger's record, a future schema): one bad record never stops a connector."""
    if record.value is None:
        return None
    try:
        return RunResult.model_validate_json(record.value)
    except (ValidationError, ValueError) as exc:
        stats.undecodable += 1
        log.warning(
            "%s: %s[%d]@%d skipped, not a RunResult: %s",
            reader,
            record.topic,
            record.partition,
            record.offset,
            str(exc).splitlines()[0][:200],
        )
        return None
