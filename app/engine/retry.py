"""Retries of one LLM request as data: a validated policy plus a tenacity loop.

Semantics of an agent's `retry_options` (AGENT_FORMAT.md):
- `attempts` counts the first try: attempts=3 is one call and at most two retries;
- the wait before retry n (n = 1, 2, …) is `initial_delay * 2**(n-1)`, capped at
  `max_delay`, then stretched by up to `jitter` (a fraction) at random and capped again,
  so a wait is never shorter than the back-off and never longer than `max_delay`;
- a provider's Retry-After raises the wait to at least that many seconds, even past
  `max_delay` (the provider knows best) but never past the run's deadline: when the
  next attempt could only start after the deadline, the run gives up at once with the
  provider's error instead of sleeping into a certain timeout;
- only retryable categories (rate_limit, llm_timeout, llm_unavailable) are retried.

Waits go through the run's `Clock`, so tests control time and assert exact waits.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_any
from tenacity.stop import stop_base

from app.contracts import SpanKind
from app.contracts.errors import FerryError
from app.engine.clock import Clock, Deadline
from app.observability.tracing import RunTracer

T = TypeVar("T")

#: Does one wait: (seconds, the error that caused it, the attempt that failed).
Sleeper = Callable[[float, FerryError, int], Awaitable[None]]


def traced_sleeper(tracer: RunTracer, clock: Clock, *, on_wait: Callable[[], None] | None = None) -> Sleeper:
    """The one sleeper of LLM calls and tool agents: a retry_wait span (wait, reason, the
    provider's Retry-After) around `clock.sleep`; `on_wait` counts the wait first."""

    async def sleep(seconds: float, error: FerryError, attempt: int) -> None:
        if on_wait is not None:
            on_wait()
        with tracer.span(
            SpanKind.RETRY_WAIT,
            "retry_wait",
            wait_seconds=round(seconds, 3),
            after_attempt=attempt,
            reason=error.category.value,
            retry_after_seconds=getattr(error, "retry_after_seconds", None),
        ):
            await clock.sleep(seconds)

    return sleep


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    initial_delay: float = 10.0
    max_delay: float = 30.0
    jitter: float = 0.2

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Wait before retry `retry_number` (1 = the second attempt), without Retry-After."""
        base = min(self.max_delay, self.initial_delay * (2.0 ** (retry_number - 1)))
        stretched = base * (1.0 + self.jitter * rng.random()) if self.jitter else base
        return min(self.max_delay, stretched)

    def wait(self, retry_number: int, error: BaseException | None, rng: random.Random) -> float:
        wait = self.backoff(retry_number, rng)
        retry_after = getattr(error, "retry_after_seconds", None)
        if isinstance(retry_after, int | float) and retry_after > wait:
            wait = float(retry_after)
        return wait

    def with_attempts(self, attempts: int) -> RetryPolicy:
        return RetryPolicy(attempts, self.initial_delay, self.max_delay, self.jitter)


class _PastDeadline(stop_base):
    """Stop when the next attempt could only start after the run's deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        remaining = self._deadline.remaining()
        return remaining is not None and retry_state.upcoming_sleep >= remaining


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, FerryError) and exc.retryable


async def call_with_retries(
    attempt: Callable[[int], Awaitable[T]],
    *,
    policy: RetryPolicy,
    deadline: Deadline,
    rng: random.Random,
    sleeper: Sleeper,
    retry_on: Callable[[BaseException], bool] | None = None,
) -> T:
    """Run `attempt(n)` (n = 1, 2, …) until it succeeds or the policy says stop.

    The last error is re-raised unchanged, so the caller sees the provider's category.
    `retry_on` replaces the default "retryable category" test (tool agents retry tool errors).
    """

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return policy.wait(state.attempt_number, error, rng)

    last: dict[str, object] = {}

    def remember(state: RetryCallState) -> None:
        last["error"] = state.outcome.exception() if state.outcome else None
        last["attempt"] = state.attempt_number

    async def sleep(seconds: float) -> None:
        error = last.get("error")
        assert isinstance(error, FerryError)
        attempt_no = last.get("attempt")
        await sleeper(seconds, error, attempt_no if isinstance(attempt_no, int) else 0)

    retrying = AsyncRetrying(
        stop=stop_any(stop_after_attempt(policy.attempts), _PastDeadline(deadline)),
        wait=wait,
        retry=retry_if_exception(retry_on or _is_retryable),
        before_sleep=remember,
        sleep=sleep,
        reraise=True,
    )
    number = 0
    async for attempt_state in retrying:
        with attempt_state:
            number += 1
            return await attempt(number)
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
