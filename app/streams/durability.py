"""What the processor does to make a run survive: its step journal, a later try after an
outage, a copy of its failure for replay, and forgetting its steps once it has a result.

The rules live in ferry.yaml `durability` (app/project/durability.py); the places are
`checkpoints.py` (steps), `retry_topics.py` (later tries) and `replay.py` (kept failures).
The processor asks, in the order a run ends:

    steps_of(agent, run id)       the journal the run executes with (None: checkpoints off)
    retry_later(...)              failed by an outage with tries left: on a retry topic,
                                  no result (the processor acks and stops there)
    keep_failed(...)              failed with a category the agent keeps: a copy first
    forget(run id)                after the result: the run's steps are tombstoned
"""

from __future__ import annotations

import logging

from app.contracts import RunRequest, RunResult, RunStatus
from app.project.durability import DurabilityConfig
from app.project.models import AgentSpec
from app.streams.checkpoints import CheckpointStore, RunSteps
from app.streams.keys import concurrency_key
from app.streams.outbox import Outbox
from app.streams.replay import FailedRun
from app.streams.retry_topics import attempt_of, next_try

log = logging.getLogger(__name__)


class RunDurability:
    def __init__(
        self,
        config: DurabilityConfig,
        outbox: Outbox,
        checkpoints: CheckpointStore | None,
        counts: dict[str, int] | None = None,
    ) -> None:
        """`counts`: where to count what happened (the processor's, read by tests and metrics)."""
        self.config = config
        self.outbox = outbox
        self.checkpoints = checkpoints
        self.counts = counts if counts is not None else {}
        self.counts.update(retried_later=0, failed_kept=0)

    def steps_of(self, agent: str, run_id: str) -> RunSteps | None:
        if self.checkpoints is None or not self.config.checkpoints_for(agent):
            return None
        return self.checkpoints.journal(run_id)

    async def retry_later(self, agent: AgentSpec, request: RunRequest, result: RunResult, topic: str) -> bool:
        """Whether the run went to the retry topic of its next delay (then it has no result yet)."""
        error = result.error
        if result.status != RunStatus.FAILED or error is None or not error.retryable:
            return False
        delays = self.config.retry_delays_for(agent.name)
        key = concurrency_key(agent, request.input)
        found = next_try(request, delays, error.category, error.message, topic, key)
        if found is None:
            return False
        delay, retry = found
        await self.outbox.retry_later(retry, delay)
        self.counts["retried_later"] += 1
        log.warning(
            "run %s failed (%s); try %d in %gs", result.run_id, error.category.value, attempt_of(retry.request), delay
        )
        return True

    async def keep_failed(self, agent: str, request: RunRequest, result: RunResult) -> None:
        """A copy on the agent's failed-runs topic, before its result (so "the result exists"
        still implies everything before it), when the agent keeps that category."""
        error = result.error
        if result.status not in (RunStatus.FAILED, RunStatus.TIMEOUT) or error is None:
            return
        if error.category not in self.config.failed_runs_for(agent):
            return
        failed = FailedRun(
            run_id=result.run_id,
            agent=agent,
            category=error.category,
            message=error.message,
            request=request,
            result=result,
        )
        await self.outbox.failed_run(failed)
        self.counts["failed_kept"] += 1

    def forget(self, run_id: str) -> None:
        if self.checkpoints is not None:
            self.checkpoints.forget(run_id)  # the result stands for its steps now
