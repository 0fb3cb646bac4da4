"""Retry policy semantics: attempts, exact waits (virtual clock), Retry-After, deadline."""

from __future__ import annotations

import random

import pytest

from app.contracts.errors import (
    AuthError,
    FerryError,
    LLMBadRequestError,
    LLMUnavailableError,
    RateLimitError,
)
from app.engine.clock import Deadline, FakeClock
from app.engine.retry import RetryPolicy, call_with_retries


class Script:
    """Fails with the given errors in order, then returns 'ok'; records attempt numbers."""

    def __init__(self, *errors: FerryError) -> None:
        self.errors = list(errors)
        self.attempts: list[int] = []

    async def __call__(self, number: int) -> str:
        self.attempts.append(number)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


async def run(script: Script, policy: RetryPolicy, clock: FakeClock, timeout: float | None = None) -> str:
    waits: list[tuple[float, str, int]] = []

    async def sleeper(seconds: float, error: FerryError, attempt: int) -> None:
        waits.append((seconds, error.category.value, attempt))
        await clock.sleep(seconds)

    result = await call_with_retries(
        script, policy=policy, deadline=Deadline(clock, timeout), rng=random.Random(0), sleeper=sleeper
    )
    script.waits = waits  # type: ignore[attr-defined]
    return result


async def test_exponential_waits_capped_by_max_delay() -> None:
    clock = FakeClock()
    script = Script(*[LLMUnavailableError("down")] * 4)
    policy = RetryPolicy(attempts=5, initial_delay=10, max_delay=30, jitter=0)
    assert await run(script, policy, clock) == "ok"
    assert script.attempts == [1, 2, 3, 4, 5]
    assert clock.sleeps == [10, 20, 30, 30]


async def test_attempts_count_the_first_try() -> None:
    clock = FakeClock()
    script = Script(*[RateLimitError("slow down")] * 5)
    with pytest.raises(RateLimitError):
        await run(script, RetryPolicy(attempts=3, initial_delay=1, max_delay=10, jitter=0), clock)
    assert script.attempts == [1, 2, 3]
    assert clock.sleeps == [1, 2]


async def test_single_attempt_never_waits() -> None:
    clock = FakeClock()
    script = Script(LLMUnavailableError("down"))
    with pytest.raises(LLMUnavailableError):
        await run(script, RetryPolicy(attempts=1, initial_delay=5, max_delay=10, jitter=0), clock)
    assert script.attempts == [1] and clock.sleeps == []


@pytest.mark.parametrize("error", [LLMBadRequestError("bad"), AuthError("no key")])
async def test_non_retryable_errors_are_not_retried(error: FerryError) -> None:
    clock = FakeClock()
    script = Script(error)
    with pytest.raises(type(error)):
        await run(script, RetryPolicy(attempts=5, initial_delay=1, max_delay=10, jitter=0), clock)
    assert script.attempts == [1]
    assert clock.sleeps == []


async def test_retry_after_raises_the_wait_even_past_max_delay() -> None:
    clock = FakeClock()
    script = Script(RateLimitError("429", retry_after_seconds=45), RateLimitError("429", retry_after_seconds=0.5))
    policy = RetryPolicy(attempts=3, initial_delay=2, max_delay=30, jitter=0)
    assert await run(script, policy, clock) == "ok"
    # 45 s from the provider beats the 2 s back-off; 0.5 s does not beat the 4 s back-off.
    assert clock.sleeps == [45, 4]


async def test_retry_after_past_the_deadline_gives_up_at_once() -> None:
    clock = FakeClock()
    script = Script(RateLimitError("429", retry_after_seconds=120))
    with pytest.raises(RateLimitError):
        await run(script, RetryPolicy(attempts=5, initial_delay=1, max_delay=10, jitter=0), clock, timeout=60)
    assert script.attempts == [1]
    assert clock.sleeps == []


async def test_backoff_that_would_pass_the_deadline_is_not_slept() -> None:
    clock = FakeClock()
    script = Script(*[LLMUnavailableError("down")] * 5)
    with pytest.raises(LLMUnavailableError):
        await run(script, RetryPolicy(attempts=5, initial_delay=10, max_delay=30, jitter=0), clock, timeout=25)
    # 10 s fits in 25 s; the next 20 s would end at 30 s > 25 s: stop, do not sleep into a timeout.
    assert clock.sleeps == [10]
    assert script.attempts == [1, 2]


def test_jitter_stretches_within_bounds() -> None:
    policy = RetryPolicy(attempts=5, initial_delay=10, max_delay=30, jitter=0.2)
    rng = random.Random(42)
    waits = [policy.backoff(1, rng) for _ in range(200)]
    assert all(10 <= w <= 12 for w in waits)
    assert len({round(w, 6) for w in waits}) > 100  # really random, not a constant
    assert all(policy.backoff(3, rng) == 30 for _ in range(50))  # 40 s capped at max_delay
