"""Ferry: connector configs, `connectors/*.{json,yaml,yml}`.

Two kinds share the folder:

- a Kafka Connect connector, in the shape the Connect REST API takes
  (`{"name": ..., "config": {"connector.class": ..., ...}}`), pushed as is; the values
  are kept as strings because that is what Connect expects;
- a webhook connector (`type: webhook`), delivered by Ferry's own webhook worker:
  it POSTs every record of `topics` to `url`, signed with the secret in the
  environment variable `secret_env` (the secret itself never sits in the repo).

- an inbound connector (`type: inbound`): every record of an existing `topic` becomes
  a run of `agent` (the record value is the input, its Kafka metadata under `_kafka`).

A Kafka Connect sink may carry a `feed`: Ferry then produces the connector's topic
itself, from `runs.results`, as schema'd JSON records with one field per `columns`
entry (what the Debezium JDBC sink needs to create and upsert a table).

Which kind a file is follows from its `type` key (`webhook`, `inbound`, or
`kafka-connect`, the default when a `config` map is present).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_CONNECTOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COLUMN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class FeedColumn(BaseModel):
    """One column of a fed table: where its value is in the run result, and its type."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    path: str = Field(
        min_length=1,
        description="Dotted path into the run result as JSON, e.g. `output.vendor` or `usage.total_tokens`.",
    )
    type: Literal["string", "int64", "float64", "boolean", "json", "timestamp"] = "string"


class FeedSpec(BaseModel):
    """What Ferry produces on a sink connector's topic: one record per matching run result."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    agents: tuple[str, ...] = Field(default=(), description="Only results of these agents; empty = all.")
    statuses: tuple[str, ...] = Field(default=(), description="Only results with these statuses; empty = all.")
    key: str = Field(default="run_id", description="The column whose value keys the record (and the row).")
    columns: Mapping[str, FeedColumn] = Field(min_length=1)

    @field_validator("columns", mode="before")
    @classmethod
    def _column_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name in value:
                if not isinstance(name, str) or not _COLUMN_NAME.match(name):
                    raise ValueError(f"column names are lower-case letters, digits and '_' (got {name!r})")
            return MappingProxyType(
                {name: {"path": column} if isinstance(column, str) else column for name, column in value.items()}
            )
        return value

    @model_validator(mode="after")
    def _key_is_a_column(self) -> FeedSpec:
        if self.key not in self.columns:
            raise ValueError(f"key {self.key!r} must be one of the columns")
        return self


class KafkaConnectSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["kafka-connect"] = "kafka-connect"
    name: str = Field(min_length=1)
    config: Mapping[str, str]
    feed: FeedSpec | None = Field(
        default=None,
        description="Ferry produces the connector's one topic from runs.results (see connectors/README.md).",
    )

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in self.config.get("topics", "").split(",") if t.strip())

    @model_validator(mode="after")
    def _fed_topic(self) -> KafkaConnectSpec:
        if self.feed is not None and len(self.topics) != 1:
            raise ValueError("a connector with a 'feed' needs exactly one topic in config.topics")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _CONNECTOR_NAME.match(value):
            raise ValueError(f"must be letters, digits, '.', '_' or '-' (got {value!r})")
        return value

    @field_validator("config", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        if "connector.class" not in value:
            raise ValueError("'connector.class' is required")
        return MappingProxyType({str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()})


class WebhookConnectorSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["webhook"]
    name: str = Field(min_length=1)
    url: str = Field(description="http(s) URL; `${ENV}` placeholders are expanded at delivery time.")
    topics: tuple[str, ...] = Field(default=("runs.results",), min_length=1)
    secret_env: str | None = Field(default=None, description="Name of the env var holding the HMAC secret.")
    retries: int = Field(default=5, ge=0, le=20)
    timeout_s: float = Field(default=10, gt=0, le=300)
    agents: tuple[str, ...] = Field(default=(), description="Only results of these agents; empty = all.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^(https?://\S+|\$\{[A-Z_][A-Z0-9_]*\}\S*)$", value):
            raise ValueError(f"must be an http(s):// URL or start with ${{ENV_VAR}} (got {value!r})")
        return value

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"must be an environment variable name like WEBHOOK_SECRET (got {value!r})")
        return value


class InboundConnectorSpec(BaseModel):
    """An existing topic whose every record runs an agent (`ferry connectors run`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["inbound"]
    name: str = Field(min_length=1)
    topic: str = Field(min_length=1, max_length=249, description="The topic read, as named on the cluster.")
    agent: str = Field(min_length=1, description="The agent (or pipeline) each record runs.")
    key_as_concurrency_key: bool = Field(
        default=False, description="Key the run request by the record's key (one key, one partition, in order)."
    )
    tenant: str = Field(default="default", min_length=1)

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not _TOPIC_NAME.match(value):
            raise ValueError(f"may only contain letters, digits, '.', '_' and '-' (got {value!r})")
        return value


ConnectorSpec = KafkaConnectSpec | WebhookConnectorSpec | InboundConnectorSpec
CONNECTOR_CLASSES: Mapping[str, type[BaseModel]] = MappingProxyType(
    {"kafka-connect": KafkaConnectSpec, "webhook": WebhookConnectorSpec, "inbound": InboundConnectorSpec}
)
