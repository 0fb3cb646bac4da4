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
What the loop did (attempts made, and why it gave up: `GiveUp`) is kept in a
`RetryRecord`, which the caller writes on its span so a trace explains a give-up.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.stop import stop_base

from app.contracts import SpanKind
from app.contracts.errors import FerryError
from app.contracts.spans import GiveUp
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


@dataclass
class RetryRecord:
    """What one `call_with_retries` did: attempts made and, when it failed, why it stopped."""

    attempts: int = 0
    give_up: GiveUp | None = None
    wait_seconds: float | None = None
    """The wait the next attempt needed, when that wait would have passed the deadline."""
    remaining_seconds: float | None = None
    """Time left before the deadline then."""
    retry_after_seconds: float | None = None
    """The provider's Retry-After on the error given up on, when it sent one."""


class _RecordedStop(stop_base):
    """Stop after the policy's attempts, or when the next attempt could only start after
    the run's deadline; note which in the record."""

    def __init__(self, attempts: int, deadline: Deadline, record: RetryRecord) -> None:
        self._attempts = attempts
        self._deadline = deadline
        self._record = record

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after_seconds", None)
        self._record.retry_after_seconds = float(retry_after) if isinstance(retry_after, int | float) else None
        if retry_state.attempt_number >= self._attempts:
            self._record.give_up = GiveUp.ATTEMPTS_EXHAUSTED
            return True
        remaining = self._deadline.remaining()
        wait = retry_state.upcoming_sleep
        if remaining is None or wait < remaining:
            return False
        by_retry_after = self._record.retry_after_seconds is not None and self._record.retry_after_seconds >= wait
        self._record.give_up = GiveUp.RETRY_AFTER_PAST_DEADLINE if by_retry_after else GiveUp.BACKOFF_PAST_DEADLINE
        self._record.wait_seconds = round(wait, 3)
        self._record.remaining_seconds = round(max(remaining, 0.0), 3)
        return True


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
    record: RetryRecord | None = None,
) -> T:
    """Run `attempt(n)` (n = 1, 2, …) until it succeeds or the policy says stop.

    The last error is re-raised unchanged, so the caller sees the provider's category.
    `retry_on` replaces the default "retryable category" test (tool agents retry tool errors).
    `record`, when given, is filled in with the attempts made and why the loop gave up.
    """
    record = record if record is not None else RetryRecord()

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

    retryable = retry_on or _is_retryable
    # The first try runs outside tenacity: nearly every call succeeds on it, and tenacity's
    # loop costs more CPU than the rest of a call's bookkeeping. A failed first try enters
    # the loop as its first attempt (re-raised, not made again), so every decision
    # (stop, wait, Retry-After, the record) is the loop's as before.
    record.attempts += 1
    try:
        return await attempt(record.attempts)
    except Exception as exc:
        if not retryable(exc):
            _note_not_retryable(record, exc)
            raise
        first_failure = exc

    async def attempt_in_loop(number: int) -> T:
        if number == 1:
            raise first_failure
        record.attempts += 1
        return await attempt(record.attempts)

    retrying = AsyncRetrying(
        stop=_RecordedStop(policy.attempts, deadline, record),
        wait=wait,
        retry=retry_if_exception(retryable),
        before_sleep=remember,
        sleep=sleep,
        reraise=True,
    )
    try:
        async for attempt_state in retrying:
            with attempt_state:
                return await attempt_in_loop(attempt_state.retry_state.attempt_number)
    except Exception as exc:
        if record.give_up is None:  # tenacity re-raises at once what it may not retry
            _note_not_retryable(record, exc)
        raise
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover


def _note_not_retryable(record: RetryRecord, exc: BaseException) -> None:
    record.give_up = GiveUp.NOT_RETRYABLE
    retry_after = getattr(exc, "retry_after_seconds", None)
    record.retry_after_seconds = float(retry_after) if isinstance(retry_after, int | float) else None
