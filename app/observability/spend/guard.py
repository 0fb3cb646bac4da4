"""`SpendGuard`: a run's door. Before a run starts, the spend limits of its scope are
checked; a reached limit ends the run `budget_exceeded` at once, without any LLM call.
After a run, its result is counted in the ledger at once, before any worker (this one
included) reads it back from `runs.results`.

It wraps whatever runs the runs (the engine, or a test's runner) and is itself one: the
worker hands it to its processor in the engine's place, and the engine knows nothing of
spend. Runs already running when a limit is reached finish; the limit holds for the
next ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from app.contracts import RunError, RunRequest, RunResult, RunStatus
from app.contracts.errors import ErrorCategory
from app.observability.spend.limits import SpendLimits

RunFunction = Callable[..., Awaitable[RunResult]]


def run_agents(request: RunRequest) -> list[str]:
    """The agents whose limits a request is in: its own, and its pipeline's for a stage."""
    agents = [request.agent]
    if request.pipeline is not None and request.pipeline.pipeline != request.agent:
        agents.append(request.pipeline.pipeline)
    return agents


class SpendGuard:
    def __init__(
        self,
        run: RunFunction,
        limits: SpendLimits,
        *,
        on_result: Callable[[RunResult], None],
        now: Callable[[], datetime],
    ) -> None:
        """`run`: the wrapped runner's `run`; `on_result`: counts a result (the ledger's add,
        and a nudge to whoever judges alerts)."""
        self._run = run
        self._limits = limits
        self._on_result = on_result
        self._now = now
        self.refused = 0

    async def run(self, request: RunRequest, **options: Any) -> RunResult:
        """`options` go to the wrapped runner as they are (`on_span`, `trace_context`…)."""
        now = self._now()
        refusal = self._limits.refusal(run_agents(request), request.tenant, now)
        if refusal is not None:
            self.refused += 1
            return RunResult.for_request(
                request,
                RunStatus.FAILED,
                started_at=now,
                ended_at=now,
                error=RunError(category=ErrorCategory.BUDGET_EXCEEDED, message=refusal),
            )
        result = await self._run(request, **options)
        self._on_result(result)
        return result
