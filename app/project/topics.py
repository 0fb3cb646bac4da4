"""Ferry: topic specs, `topics/*.yaml`, read by `ferry topics apply` and the worker at start.

A file holds a `topics:` list. Each entry names one topic (`name`) or a family of topics
(`pattern`, a glob such as `agent.*.requests`, for topics created per agent or pipeline
stage) and gives its Kafka settings; `class` groups topics by role so tooling can say
"every requests topic" without parsing names. Example:

    topics:
      - class: results
        name: runs.results
        partitions: 6
        replication: 3
        cleanup_policy: compact
      - class: requests
        pattern: "agent.*.requests"
        partitions: 12
        retention_ms: 604800000
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TOPIC_CLASSES = (
    "requests",
    "results",
    "traces",
    "dlq",
    "alerts",
    "pipeline",
    "deployments",
    "checkpoints",
    "history",
    "other",
)
_TOPIC_CHARS = re.compile(r"^[A-Za-z0-9._*-]+$")


class TopicSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    name: str | None = Field(default=None, max_length=249)
    pattern: str | None = Field(default=None, max_length=249)
    topic_class: Literal[TOPIC_CLASSES] = Field(default="other", alias="class")  # type: ignore[valid-type]
    partitions: int = Field(default=1, ge=1, le=10000)
    replication: int = Field(default=1, ge=1, le=32)
    retention_ms: int | None = Field(default=None, ge=-1, description="-1 keeps forever.")
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete"
    config: Mapping[str, str] = Field(
        default_factory=lambda: MappingProxyType({}),
        description="Any other Kafka topic config, passed through (e.g. min.insync.replicas).",
    )

    @field_validator("name", "pattern")
    @classmethod
    def _valid_chars(cls, value: str | None) -> str | None:
        if value is not None and not _TOPIC_CHARS.match(value):
            raise ValueError(f"may only contain letters, digits, '.', '_', '-' (and '*' in patterns), got {value!r}")
        return value

    @field_validator("config", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return MappingProxyType({str(k): str(v) for k, v in value.items()})
        return value

    @model_validator(mode="after")
    def _one_of_name_or_pattern(self) -> TopicSpec:
        if (self.name is None) == (self.pattern is None):
            raise ValueError("give exactly one of 'name' or 'pattern'")
        if self.name is not None and "*" in self.name:
            raise ValueError("'name' may not contain '*'; use 'pattern' for a family of topics")
        return self

    def matches(self, topic: str) -> bool:
        """Whether this spec applies to a concrete topic name."""
        if self.name is not None:
            return topic == self.name
        regex = "^" + re.escape(self.pattern or "").replace(r"\*", "[^.]*") + "$"
        return re.match(regex, topic) is not None


class TopicsFile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    topics: tuple[TopicSpec, ...] = Field(min_length=1)
