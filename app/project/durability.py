"""`ferry.yaml` `durability:`: what a worker keeps of a run so that a crash or a failure
costs as little as possible, per agent.

    durability:
      checkpoints: true                 # the default of every agent
      agents:
        order-desk:
          checkpoints: false            # every step run again after a crash (cheap, idempotent tools)
          failed_runs: [llm_unavailable, tool_error]   # also to agent.order-desk.failed, for `ferry dlq replay`
          retry_delays: [60, 600, 3600]  # a run failed on a provider outage is tried again later

Step checkpoints cost one acknowledged Kafka write per LLM response and tool result
(bench/bench_checkpoints.py); an agent whose steps are cheaper to redo than to record
turns them off. `failed_runs` lists the error categories whose failed runs are copied
to the agent's failed-runs topic (docs/streams.md "Durability").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.contracts.errors import ErrorCategory


class AgentDurability(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    checkpoints: bool | None = Field(default=None, description="Record each completed step (default: the project's).")
    failed_runs: tuple[ErrorCategory, ...] = Field(
        default=(), description="Error categories whose failed runs go to the agent's failed-runs topic."
    )
    retry_delays: tuple[float, ...] = Field(
        default=(),
        description="Seconds before each later try of a run that failed with a retryable category (60, 600, 3600).",
    )

    @field_validator("retry_delays", mode="after")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay <= 0 or delay != delay for delay in value):
            raise ValueError("retry delays are seconds above 0")
        return value


class DurabilityConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    checkpoints: bool = True
    agents: Mapping[str, AgentDurability] = Field(default_factory=lambda: MappingProxyType({}))

    @field_validator("agents", mode="after")
    @classmethod
    def _freeze(cls, value: Mapping[str, Any]) -> Mapping[str, AgentDurability]:
        return MappingProxyType(dict(value))

    def checkpoints_for(self, agent: str) -> bool:
        own = self.agents.get(agent)
        return self.checkpoints if own is None or own.checkpoints is None else own.checkpoints

    def retry_delays_for(self, agent: str) -> tuple[float, ...]:
        own = self.agents.get(agent)
        return own.retry_delays if own is not None else ()

    def all_retry_delays(self) -> tuple[float, ...]:
        """Every delay some agent uses, each once, shortest first: one retry topic each."""
        return tuple(sorted({d for own in self.agents.values() for d in own.retry_delays}))

    def failed_runs_for(self, agent: str) -> frozenset[ErrorCategory]:
        own = self.agents.get(agent)
        return frozenset(own.failed_runs) if own is not None else frozenset()
