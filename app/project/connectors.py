"""Ferry: connector configs, `connectors/*.{json,yaml,yml}`.

Two kinds share the folder:

- a Kafka Connect connector, in the shape the Connect REST API takes
  (`{"name": ..., "config": {"connector.class": ..., ...}}`), pushed as is; the values
  are kept as strings because that is what Connect expects;
- a webhook connector (`type: webhook`), delivered by Ferry's own webhook worker:
  it POSTs every record of `topics` to `url`, signed with the secret in the
  environment variable `secret_env` (the secret itself never sits in the repo).

- an inbound connector (`type: inbound`): every record of an existing `topic` becomes
  a run of `agent` (the record value is the input, its Kafka metadata under `_kafka`);
- an object-storage trigger (`type: s3`): every object created in a bucket becomes a run
  of `agent` with the object as its document;
- a cron trigger (`type: schedule`): every tick runs `agent` once with a fixed payload.

A Kafka Connect sink may carry a `feed`: Ferry then produces the connector's topic
itself, from `runs.results`, as schema'd JSON records with one field per `columns`
entry (what the Debezium JDBC sink needs to create and upsert a table).

A feed and a webhook connector may carry `when`: dotted paths into the run result, each
with the value it must hold (`{output.needs_review: true}`), so one pipeline's results
are routed by what its output says (the invoice example sends the invoices that need a
review to a review topic and webhook, the others to the table and the ready webhook).

Which kind a file is follows from its `type` key (`webhook`, `inbound`, `s3`,
`schedule`, or `kafka-connect`, the default when a `config` map is present).
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


Scalar = str | int | float | bool | None


def _when(value: Any) -> Any:
    """`when:` checked at load, so a typo'd filter fails `ferry lint`, not a delivery."""
    if isinstance(value, dict):
        for path, wanted in value.items():
            if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
                raise ValueError(
                    f"`when` keys are dotted paths into the run result, e.g. output.needs_review (got {path!r})"
                )
            if isinstance(wanted, (dict, list)):
                raise ValueError(f"`when` values are single values (text, number, true/false, null), not {wanted!r}")
        return MappingProxyType(dict(value))
    return value


def result_matches(when: Mapping[str, Scalar], result: Mapping[str, Any]) -> bool:
    """Whether a run result (as JSON) holds every value of `when`; a missing path holds null."""
    for path, wanted in when.items():
        current: Any = result
        for part in path.split("."):
            current = current.get(part) if isinstance(current, Mapping) else None
        if current != wanted or isinstance(current, bool) != isinstance(wanted, bool):
            return False
    return True


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
    when: Mapping[str, Scalar] = Field(
        default_factory=dict, description="Only results holding these values: {dotted path: value}."
    )
    key: str = Field(default="run_id", description="The column whose value keys the record (and the row).")
    columns: Mapping[str, FeedColumn] = Field(min_length=1)

    @field_validator("when", mode="before")
    @classmethod
    def _when_paths(cls, value: Any) -> Any:
        return _when(value)

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
    when: Mapping[str, Scalar] = Field(
        default_factory=dict, description="Only results holding these values: {dotted path: value}."
    )

    @field_validator("when", mode="before")
    @classmethod
    def _when_paths(cls, value: Any) -> Any:
        return _when(value)

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


#: What the object-storage trigger accepts by default: the documents the example tools read.
DOCUMENT_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/tiff")


class S3ConnectorSpec(BaseModel):
    """Objects created in a bucket start runs of an agent, the object as the run's document.

    `mode: events`: the store's "object created" notifications (S3's event JSON) arrive on
    `events_topic`; `mode: poll`: the bucket is listed every `poll_interval_s` for stores
    that cannot send events. Credentials come from the environment (`AWS_ACCESS_KEY_ID`,
    `AWS_SECRET_ACCESS_KEY`, profiles: boto3's usual chain), or from the variables named
    by `access_key_env` / `secret_key_env`.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["s3"]
    name: str = Field(min_length=1)
    agent: str = Field(min_length=1, description="The agent (or pipeline) each object runs.")
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="", description="Only keys starting with this.")
    suffixes: tuple[str, ...] = Field(
        default=(), description="Only keys ending with one of these (any case); empty = all."
    )
    mode: Literal["events", "poll"] = "events"
    events_topic: str | None = Field(default=None, description="mode events: the topic the notifications arrive on.")
    poll_interval_s: float = Field(default=30.0, ge=1, le=86400)
    late_upload_s: float = Field(
        default=300.0,
        ge=0,
        description="mode poll: how long after its timestamp an object may still appear in a listing.",
    )
    endpoint_url: str | None = Field(default=None, description="An S3-compatible store's URL; `${ENV}` allowed.")
    region: str | None = None
    access_key_env: str | None = None
    secret_key_env: str | None = None
    max_bytes: int = Field(
        default=700_000,
        ge=1,
        description="Larger objects are skipped (a run request carries the document: Kafka's record limit applies).",
    )
    content_types: tuple[str, ...] = Field(default=DOCUMENT_TYPES, description="Allowed types; empty = any.")
    tenant: str = Field(default="default", min_length=1)

    @field_validator("events_topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is not None and not _TOPIC_NAME.match(value):
            raise ValueError(f"may only contain letters, digits, '.', '_' and '-' (got {value!r})")
        return value

    @field_validator("access_key_env", "secret_key_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"must be an environment variable name like S3_ACCESS_KEY (got {value!r})")
        return value

    @model_validator(mode="after")
    def _events_need_a_topic(self) -> S3ConnectorSpec:
        if self.mode == "events" and self.events_topic is None:
            raise ValueError("mode events needs `events_topic`, the topic the store's notifications arrive on")
        return self

    def wants(self, key: str) -> bool:
        """Whether an object key is this trigger's (prefix and suffix)."""
        if not key.startswith(self.prefix) or key.endswith("/"):
            return False
        return not self.suffixes or key.lower().endswith(tuple(s.lower() for s in self.suffixes))


class ScheduleConnectorSpec(BaseModel):
    """A cron trigger: at each tick (UTC) one run of `agent` with `payload` as its input.

    `cron`: five fields (minute hour day month weekday), or six with seconds first
    (`*/10 * * * * *`: every ten seconds). `missed`: what happens to the ticks that fell
    while no worker ran: `skip` them (the next tick fires), or `catch_up` (each fires,
    at most `max_catch_up`, oldest first).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["schedule"]
    name: str = Field(min_length=1)
    agent: str = Field(min_length=1)
    cron: str = Field(min_length=9)
    payload: dict[str, Any] = Field(default_factory=dict)
    missed: Literal["skip", "catch_up"] = "skip"
    max_catch_up: int = Field(default=100, ge=1, le=10_000)
    tenant: str = Field(default="default", min_length=1)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        fields = value.split()
        if len(fields) not in (5, 6) or not croniter.is_valid(value, second_at_beginning=len(fields) == 6):
            raise ValueError(
                f"not a cron expression (got {value!r}): five fields `min hour day month weekday`, "
                "or six with seconds first"
            )
        return " ".join(fields)


ConnectorSpec = KafkaConnectSpec | WebhookConnectorSpec | InboundConnectorSpec | S3ConnectorSpec | ScheduleConnectorSpec
CONNECTOR_CLASSES: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        "kafka-connect": KafkaConnectSpec,
        "webhook": WebhookConnectorSpec,
        "inbound": InboundConnectorSpec,
        "s3": S3ConnectorSpec,
        "schedule": ScheduleConnectorSpec,
    }
)
