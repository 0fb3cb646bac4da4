"""`ferry.yaml`: optional project-wide settings, today per-model cost and rate overrides.

litellm knows list prices and nothing of a team's negotiated prices or provider quotas;
these overrides let cost accounting and the scheduler's rate limits use the real ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ModelOverrides(BaseModel):
    """Overrides for one litellm model string (e.g. `gemini/gemini-2.5-flash`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    input_cost_per_token: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    output_cost_per_token: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    api: Literal["openai", "litellm"] | None = Field(
        default=None, description="The model path: `openai` (the direct OpenAI-protocol client) or `litellm`."
    )
    base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+",
        description="An OpenAI-compatible server (ending in /v1) this model is sent to; implies `api: openai`.",
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The environment variable holding this model's API key (never the key itself).",
    )

    @model_validator(mode="after")
    def _base_url_needs_the_direct_path(self) -> ModelOverrides:
        if self.base_url is not None and self.api == "litellm":
            raise ValueError("base_url is for `api: openai`; litellm reads its own provider settings")
        return self


class HistoryConfig(BaseModel):
    """The run-history store (`history:` in ferry.yaml): how long runs and spans are kept."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    retention_days: int = Field(default=30, ge=1, le=36_500, description="Runs older than this are pruned.")


class WebhooksConfig(BaseModel):
    """`webhooks:` in ferry.yaml: how callback URLs are signed and which private networks they may reach.

    Callback URLs come from whoever submits a run, so by default only public addresses are
    called; `allow_private` lists the networks (CIDR) that are allowed anyway, e.g.
    `["127.0.0.1/32"]` for a receiver on the same machine. The signing secret is read from
    the environment variable named by `secret_env`, never from this file.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    allow_private: tuple[str, ...] = Field(default=(), description="CIDR networks callbacks may reach anyway.")
    secret_env: str = Field(
        default="FERRY_WEBHOOK_SECRET",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The environment variable holding the HMAC secret of callback deliveries.",
    )

    @field_validator("allow_private", mode="after")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            try:
                ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not a network (e.g. 127.0.0.1/32, 10.0.0.0/8, ::1/128)") from None
        return value


class ProjectConfig(BaseModel):
    """The parsed `ferry.yaml`; an absent file is the same as an empty one."""

    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    models: Mapping[str, ModelOverrides] = Field(default_factory=lambda: MappingProxyType({}))
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)

    @field_validator("models", mode="after")
    @classmethod
    def _freeze(cls, value: Mapping[str, Any]) -> Mapping[str, ModelOverrides]:
        return MappingProxyType(dict(value))

    def overrides_for(self, model: str) -> ModelOverrides | None:
        return self.models.get(model)
