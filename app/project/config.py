"""`ferry.yaml`: optional project-wide settings: per-model cost and rate overrides, the
run history's retention, spend limits and spend alerts.

litellm knows list prices and nothing of a team's negotiated prices or provider quotas;
these overrides let cost accounting and the scheduler's rate limits use the real ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.project.durability import DurabilityConfig


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


SpendScope = Literal["project", "agent", "tenant"]
SpendPeriod = Literal["day", "month"]


class SpendLimit(BaseModel):
    """One cost limit (an item of `spend_limits:`): USD per UTC day or month, for the whole
    project, an agent or a tenant. Workers refuse new runs of its scope once it is reached."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    scope: SpendScope
    name: str | None = Field(
        default=None, min_length=1, description="The agent or tenant it applies to; omitted: each one on its own."
    )
    period: SpendPeriod
    limit_usd: float = Field(gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _project_has_no_name(self) -> SpendLimit:
        if self.scope == "project" and self.name is not None:
            raise ValueError("a project limit covers every run and takes no `name` (use scope agent or tenant)")
        return self


class SpendAlerts(BaseModel):
    """`spend_alerts:`: when `ferry.alerts` hears of spend (defaults apply with any limit)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    thresholds: tuple[int, ...] = Field(
        default=(50, 80, 100), description="Percent of each limit at which one alert is sent per period."
    )
    spike_factor: float = Field(
        default=3.0, ge=0, allow_inf_nan=False, description="A day's project spend above this many times the "
        "trailing daily average is an alert; 0 turns it off."
    )  # fmt: skip
    spike_window_days: int = Field(default=30, ge=1, le=366, description="Days the trailing average covers.")
    spike_min_days: int = Field(default=7, ge=1, le=366, description="Days of history needed before spikes are judged.")

    @field_validator("thresholds", mode="after")
    @classmethod
    def _percentages(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= pct <= 100 for pct in value):
            raise ValueError(f"thresholds are percentages between 1 and 100 (got {list(value)})")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _enough_window(self) -> SpendAlerts:
        if self.spike_min_days > self.spike_window_days:
            raise ValueError(
                f"spike_min_days ({self.spike_min_days}) cannot exceed spike_window_days ({self.spike_window_days})"
            )
        return self


class WebSearchConfig(BaseModel):
    """`web_search:` in ferry.yaml: the search service behind Connic's `web_search` tool.

    `searxng`: a SearXNG instance's JSON API (`<url>/search?format=json`), self-hosted, no
    key needed; `tavily` and `brave`: those services' search APIs, the key read from the
    environment variable `api_key_env` names (never written here).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    provider: Literal["searxng", "tavily", "brave"]
    url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+", description="The service's base URL.")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout_s: float = Field(default=15.0, gt=0, le=120, description="Seconds one search may take.")

    @model_validator(mode="after")
    def _what_each_provider_needs(self) -> WebSearchConfig:
        if self.provider == "searxng" and self.url is None:
            raise ValueError("a searxng provider needs the url of its instance")
        if self.provider in ("tavily", "brave") and self.api_key_env is None:
            raise ValueError(f"a {self.provider} provider needs api_key_env: the variable holding its API key")
        return self


#: Embedding models served inside the worker (app/engine/local_embeddings.py).
LOCAL_EMBEDDING_MODELS = frozenset({"local/wordllama"})
DEFAULT_EMBEDDING_MODEL = "local/wordllama"


class KnowledgeConfig(BaseModel):
    """`knowledge:` in ferry.yaml: how Connic's knowledge tools rank passages.

    Passages are ranked by the cosine similarity of their embeddings from `embedding_model`:
    by default `local/wordllama`, computed in the worker from a model shipped in a Python
    package (nothing to configure, nothing downloaded); or a provider's model string as
    agents write them (`openai/text-embedding-3-small`, sent on the model path its provider
    takes, with the `models:` overrides). `none` ranks lexically (shared words).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    embedding_model: str | None = Field(
        default=DEFAULT_EMBEDDING_MODEL, min_length=1, description="The model that embeds passages; none: lexical."
    )
    timeout_s: float = Field(default=30.0, gt=0, le=300, description="Seconds one embedding call may take.")

    @field_validator("embedding_model", mode="before")
    @classmethod
    def _none_is_lexical(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("none", "lexical") else value

    @field_validator("embedding_model", mode="after")
    @classmethod
    def _known_local_model(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("local/") and value not in LOCAL_EMBEDDING_MODELS:
            raise ValueError(
                f"unknown local embedding model {value!r}: the local ones are {sorted(LOCAL_EMBEDDING_MODELS)}"
            )
        return value


class ProjectConfig(BaseModel):
    """The parsed `ferry.yaml`; an absent file is the same as an empty one."""

    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    models: Mapping[str, ModelOverrides] = Field(default_factory=lambda: MappingProxyType({}))
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    spend_limits: tuple[SpendLimit, ...] = ()
    spend_alerts: SpendAlerts | None = None  # None: the defaults, when there are limits
    durability: DurabilityConfig = Field(default_factory=DurabilityConfig)  # checkpoints, failed-runs topics
    web_search: WebSearchConfig | None = None  # Connic's web_search tool (None: not available)
    knowledge: KnowledgeConfig = Field(default_factory=KnowledgeConfig)  # Connic's retrieval_* ranking

    @field_validator("models", mode="after")
    @classmethod
    def _freeze(cls, value: Mapping[str, Any]) -> Mapping[str, ModelOverrides]:
        return MappingProxyType(dict(value))

    @field_validator("spend_limits", mode="after")
    @classmethod
    def _one_limit_per_scope_and_period(cls, value: tuple[SpendLimit, ...]) -> tuple[SpendLimit, ...]:
        seen: dict[tuple[str, str | None, str], int] = {}
        for index, limit in enumerate(value):
            ident = (limit.scope, limit.name, limit.period)
            if ident in seen:
                who = limit.scope if limit.scope == "project" else f"{limit.scope} {limit.name or '(each)'}"
                raise ValueError(
                    f"[{index}] repeats [{seen[ident]}]: two limits for {who} per {limit.period}; keep one"
                )
            seen[ident] = index
        return value

    @property
    def watches_spend(self) -> bool:
        """Whether workers keep a spend ledger: some limit, or spend alerts asked for."""
        return bool(self.spend_limits) or self.spend_alerts is not None

    def overrides_for(self, model: str) -> ModelOverrides | None:
        return self.models.get(model)
