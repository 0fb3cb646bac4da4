"""What a run is given (`RunDeps`, read-only) apart from what changes during it (`RunState`).

A function that takes only `RunDeps` cannot change the run; one that takes `RunState`
says so in its signature. Nothing here is shared between runs except the engine-wide
services inside `RunDeps` (LLM client, tool executor, tracer provider, cost model),
which are immutable or safe for concurrent use.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.contracts import ApprovalDecision, Usage
from app.engine.budget import Budget
from app.engine.clock import Clock, Deadline
from app.engine.model import LLMClient
from app.engine.pricing import CostModel
from app.engine.retry import RetryPolicy
from app.engine.tools import ToolExecutor
from app.observability.tracing import RunTracer

if TYPE_CHECKING:
    from connic.core import ToolHook


@dataclass
class RunState:
    """Mutable per-run state; `partial_output()` is what a timed-out run returns."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    llm_steps: int = 0  # this agent's LLM calls, checked against max_iterations
    llm_retries: int = 0  # transport retries (waits) spent so far
    validation_retries_used: int = 0
    last_text: str | None = None
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    stage_outputs: list[Any] = field(default_factory=list)
    publish_outbound: bool = True  # False after StopProcessing(publish_outbound=False): no callback
    blocked: str | None = None  # the guardrail that blocked the run, described
    guardrail_warnings: list[str] = field(default_factory=list)  # warn/redact rules that found something

    def partial_output(self) -> Any:
        """The best output so far: the last assistant text and the tool results gathered."""
        if self.last_text is None and not self.tool_results and not self.stage_outputs:
            return None
        partial: dict[str, Any] = {"last_message": self.last_text, "tool_results": list(self.tool_results)}
        if self.stage_outputs:
            partial["stage_outputs"] = list(self.stage_outputs)
        return partial


@dataclass(frozen=True)
class RunDeps:
    """Everything one run (or one stage of a chain) is given."""

    run_id: str
    context: dict[str, Any]  # this run's own dict: tools receive it
    llm: LLMClient  # the engine's client, middleware included
    tools: ToolExecutor
    cost_model: CostModel
    tracer: RunTracer
    clock: Clock
    deadline: Deadline
    rng: random.Random  # jitter source, shared by the engine's runs (one event-loop thread)
    jitter: float
    outer_budget: Budget | None = None  # a chain's budget, bounding each of its stages
    tool_hooks: Mapping[str, ToolHook] = field(default_factory=dict)  # the project's hooks/<agent>.py, by agent
    history: tuple[dict[str, str], ...] = ()  # a chat's earlier turns, before the input
    approvals: Mapping[str, ApprovalDecision] = field(default_factory=dict)  # humans' decisions, by step

    def policy(self, attempts: int, initial_delay: float, max_delay: float) -> RetryPolicy:
        return RetryPolicy(attempts, initial_delay, max_delay, self.jitter)


def budget_for(agent: Any, outer: Budget | None = None) -> Budget:
    spec = getattr(agent, "budget", None)
    return Budget(
        max_tokens=getattr(spec, "max_tokens", None),
        max_cost_usd=getattr(spec, "max_cost_usd", None),
        max_iterations=int(getattr(agent, "max_iterations", 100)),
    ).within(outer)
