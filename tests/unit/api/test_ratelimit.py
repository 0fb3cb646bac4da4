"""The per-key token bucket: a burst goes through, the next request waits its share."""

from __future__ import annotations

from app.api.ratelimit import RateLimiter, retry_after_header


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refusal_with_the_wait_until_a_token_is_back() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k") == 0.5
    clock.now += 0.5
    assert limiter.acquire("k") == 0.0
    assert limiter.acquire("k") > 0


def test_keys_have_separate_buckets_and_refill_stops_at_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("b") == 0.0
    assert limiter.acquire("a") > 0
    clock.now += 1000
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"
