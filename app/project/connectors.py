"""Ferry: connector configs, `connectors/*.{json,yaml,yml}`.

Two kinds share the folder:

- a Kafka Connect connector, in the shape the Connect REST API takes
  (`{"name": ..., "config": {"connector.class": ..., ...}}`), pushed as is; the values
  are kept as strings because that is what Connect expects;
- a webhook connector (`type: webhook`), delivered by Ferry's own webhook worker:
  it POSTs every record of `topics` to `url`, signed with the secret in the
  environment variable `secret_env` (the secret itself never sits in the repo).

Which kind a file is follows from its `type` key (`webhook`, or `kafka-connect`, the
default when a `config` map is present).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_CONNECTOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class KafkaConnectSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["kafka-connect"] = "kafka-connect"
    name: str = Field(min_length=1)
    config: Mapping[str, str]

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


ConnectorSpec = KafkaConnectSpec | WebhookConnectorSpec
CONNECTOR_CLASSES: Mapping[str, type[BaseModel]] = MappingProxyType(
    {"kafka-connect": KafkaConnectSpec, "webhook": WebhookConnectorSpec}
)
