"""Concurrency keys: the value at an agent's `concurrency.key` path in a run's input.

The same string is the Kafka record key of the request (so one key value always lands
on one partition, hence one worker) and the scheduler's serialisation key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.project import AgentSpec

_MISSING = object()


def value_at(data: Mapping[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def concurrency_key(agent: AgentSpec, payload: Mapping[str, Any]) -> str | None:
    """The run's key value as a string, or None (no key configured, or the input lacks it)."""
    spec = getattr(agent, "concurrency", None)
    if spec is None:
        return None
    value = value_at(payload, spec.key)
    if value is _MISSING or value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def on_conflict(agent: AgentSpec) -> str:
    spec = getattr(agent, "concurrency", None)
    return "queue" if spec is None else spec.on_conflict
