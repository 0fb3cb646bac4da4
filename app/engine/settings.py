"""Engine settings: what an operator tunes, as one validated pydantic model.

Values come from arguments first, then `FERRY_*` environment variables, then defaults.
Nothing here is per run: per-run limits come from the agent spec. Data only: what the
engine is given as objects (the clock, the model client, LLM middleware) are `Engine`
arguments, so settings stay serialisable and comparable.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


class EngineSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    llm_base_url: str | None = Field(
        default_factory=lambda: _env("FERRY_LLM_BASE_URL"),
        description="An OpenAI-compatible endpoint (ending in /v1). When set, every model "
        "`provider/name` is sent there as `name` on the direct OpenAI-protocol path: the simulator, vLLM, a proxy.",
    )
    llm_api_key: str = Field(
        default_factory=lambda: _env("FERRY_LLM_API_KEY") or "ferry-sim",
        description="API key sent to `llm_base_url`; unused otherwise.",
    )
    tool_threads: int = Field(
        default=32,
        ge=1,
        description="Threads shared by sync tools of all runs of this engine.",
    )
    process_slots: int = Field(
        default=8,
        ge=1,
        description="Isolated tool processes alive at once, across runs; further calls wait "
        "(within their run's deadline, before their tool_timeout starts).",
    )
    process_memory_mb: int = Field(
        default=1024,
        ge=32,
        description="Address-space limit (RLIMIT_AS) of a tool call under `isolation: process`.",
    )
    process_cpu_seconds: int = Field(
        default=60,
        ge=1,
        description="CPU-time limit (RLIMIT_CPU) of a tool call under `isolation: process` "
        "when the agent has no `tool_timeout` (otherwise ceil(tool_timeout) is used).",
    )
    retry_jitter: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="A back-off wait is stretched by up to this fraction, at random, so that "
        "runs rate-limited together do not retry together.",
    )
    random_seed: int | None = Field(default=None, description="Seed of the jitter source, for reproducible waits.")
