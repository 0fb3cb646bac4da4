from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from app.engine.clock import FakeClock
from app.project.config import ModelOverrides, ProjectConfig
from app.streams.ratelimit import ModelRateLimiter, RateLimitedLLM, TokenBucket


async def test_a_bucket_lets_a_burst_through_then_paces_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, capacity=2.0, clock=clock)  # 120 per minute
    start = clock.monotonic()
    for _ in range(6):
        await bucket.take(1)
    assert clock.monotonic() - start == 2.0  # 2 at once, then one every 0.5 s


async def test_requests_per_minute_make_calls_wait_instead_of_failing() -> None:
    clock = FakeClock()
    config = ProjectConfig(models={"m": ModelOverrides(requests_per_minute=60)})
    limiter = ModelRateLimiter.from_config(config, clock=clock)
    start = clock.monotonic()
    for _ in range(70):
        await limiter.acquire("m", 10)
    assert clock.monotonic() - start == 10.0  # 60 banked, 10 more at one per second
    await limiter.acquire("unlimited-model", 10_000)
    assert clock.monotonic() - start == 10.0


async def test_tokens_per_minute_are_settled_with_actual_usage() -> None:
    clock = FakeClock()
    limiter = ModelRateLimiter({"m": (None, 600)}, clock=clock)  # 10 tokens per second
    await limiter.acquire("m", 100)
    limiter.settle("m", 100, 700)  # the call used 600 more than estimated: 100 tokens of debt
    start = clock.monotonic()
    await limiter.acquire("m", 100)
    assert abs((clock.monotonic() - start) - 20.0) < 1e-6  # pay the debt, then wait for 100


async def test_a_share_divides_the_quota_between_workers() -> None:
    clock = FakeClock()
    limiter = ModelRateLimiter({"m": (120, None)}, clock=clock, share=0.5)
    start = clock.monotonic()
    for _ in range(61):
        await limiter.acquire("m", 1)
    assert clock.monotonic() - start == 1.0  # 60 banked, then one per second


@dataclass
class _Request:
    model: str
    messages: list[dict[str, str]]
    tools: None = None


@dataclass
class _Response:
    prompt_tokens: int = 40
    completion_tokens: int = 10


@dataclass
class _FakeLLM:
    calls: list[float] = field(default_factory=list)
    clock: FakeClock = field(default_factory=FakeClock)
    base_url: str = "http://sim"

    async def complete(self, request: _Request) -> _Response:
        self.calls.append(self.clock.monotonic())
        return _Response()


async def test_every_agent_sharing_a_model_shares_its_limit() -> None:
    fake = _FakeLLM()
    limiter = ModelRateLimiter({"m": (30, None)}, clock=fake.clock)  # one call per 2 s after a burst of 30
    llm = RateLimitedLLM(fake, limiter)
    request = _Request("m", [{"role": "user", "content": "hi"}])
    await asyncio.gather(*(llm.complete(request) for _ in range(32)))  # e.g. two agents, 16 runs each
    assert len(fake.calls) == 32
    assert fake.calls[-1] - fake.calls[0] == 4.0
    assert llm.base_url == "http://sim"  # everything else passes through
