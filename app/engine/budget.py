"""Per-run budgets (`budget.max_tokens`, `budget.max_cost_usd`, `max_iterations`) in one place.

The loop calls `check_before_request` before every LLM call: the run stops BEFORE the
call that would pass a limit, so a budget is a promise about what a run may spend.
The next call's prompt size is estimated with a heuristic (4 characters per token of
the JSON-serialised messages and tool schemas, the usual rule of thumb for English and
code) because a tokenizer per model is slow and, for most providers, unavailable
offline; the completion cannot be known in advance. `check_after_response` catches a
completion that pushed the run over anyway: such a run ends `budget_exceeded` too.

A cost limit with an unknown price (cost None) cannot be enforced and is not: the run
goes on and reports cost None.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from app.contracts import Usage
from app.contracts.errors import BudgetExceededError
from app.contracts.money import format_usd
from app.engine.pricing import CostModel

CHARS_PER_TOKEN = 4


def estimate_prompt_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """Prompt tokens of a request before it is sent, rounded up (at least 1): the one
    estimate of Ferry, used by budgets and by the worker's model rate limiter."""
    size = len(json.dumps(messages, default=str)) + (len(json.dumps(tools, default=str)) if tools else 0)
    return max(1, math.ceil(size / CHARS_PER_TOKEN))


@dataclass(frozen=True)
class Budget:
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    max_iterations: int = 100

    def within(self, outer: Budget | None) -> Budget:
        """The tighter of this budget and `outer` (a chain's budget bounds its stages)."""
        if outer is None:
            return self
        return Budget(
            max_tokens=_smaller(self.max_tokens, outer.max_tokens),
            max_cost_usd=_smaller(self.max_cost_usd, outer.max_cost_usd),
            max_iterations=self.max_iterations,
        )

    def check_before_request(
        self,
        usage: Usage,
        *,
        steps: int,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        cost_model: CostModel,
    ) -> int:
        """Raise if the next call would pass a limit; return the estimated prompt tokens.

        `steps` counts this agent's own LLM calls (a chain's stages share `usage`, not steps).
        """
        if steps >= self.max_iterations:
            raise BudgetExceededError(f"max_iterations reached ({self.max_iterations} LLM calls)")
        estimate = estimate_prompt_tokens(messages, tools)
        if self.max_tokens is not None and usage.total_tokens + estimate > self.max_tokens:
            raise BudgetExceededError(
                f"the next LLM call (~{estimate} prompt tokens) would pass max_tokens "
                f"{self.max_tokens} ({usage.total_tokens} used)"
            )
        if self.max_cost_usd is not None and usage.cost_usd is not None:
            next_cost = cost_model.estimate(model, estimate)
            if next_cost is not None and usage.cost_usd + next_cost > self.max_cost_usd:
                raise BudgetExceededError(
                    f"the next LLM call (~{format_usd(next_cost)}) would pass max_cost_usd "
                    f"{format_usd(self.max_cost_usd)} ({format_usd(usage.cost_usd)} spent)"
                )
        return estimate

    def check_after_response(self, usage: Usage) -> None:
        if self.max_tokens is not None and usage.total_tokens > self.max_tokens:
            raise BudgetExceededError(f"{usage.total_tokens} tokens used, over max_tokens {self.max_tokens}")
        if self.max_cost_usd is not None and usage.cost_usd is not None and usage.cost_usd > self.max_cost_usd:
            raise BudgetExceededError(
                f"{format_usd(usage.cost_usd)} spent, over max_cost_usd {format_usd(self.max_cost_usd)}"
            )


def _smaller(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
