from __future__ import annotations

import asyncio

import pytest

from app.engine import LLMClient, LLMRequest, LLMUsage
from app.engine.budget import estimate_prompt_tokens
from app.engine.clock import FakeClock
from app.engine.testing import FunctionLLM, Reply, ScriptedLLM
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


def _request(model: str = "m", text: str = "hi") -> LLMRequest:
    return LLMRequest(model=model, messages=[{"role": "user", "content": text}])


async def test_every_agent_sharing_a_model_shares_its_limit() -> None:
    clock = FakeClock()
    calls: list[float] = []

    def answer(request: LLMRequest) -> Reply:
        calls.append(clock.monotonic())
        return Reply(text="ok", usage=LLMUsage(prompt_tokens=40, completion_tokens=10))

    fake = FunctionLLM(answer, clock=clock)
    limiter = ModelRateLimiter({"m": (30, None)}, clock=clock)  # one call per 2 s after a burst of 30
    llm = RateLimitedLLM(fake, limiter)
    assert isinstance(llm, LLMClient)
    responses = await asyncio.gather(*(llm.complete(_request()) for _ in range(32)))  # e.g. two agents, 16 runs each
    assert len(calls) == 32 and len(fake.requests) == 32
    assert calls[-1] - calls[0] == 4.0
    assert {(r.text, r.usage.total_tokens) for r in responses} == {("ok", 50)}  # answers pass through unchanged


async def test_tokens_are_taken_by_the_engine_estimate_and_settled_by_reported_usage() -> None:
    clock = FakeClock()
    fake = ScriptedLLM([Reply(text="a", usage=LLMUsage(prompt_tokens=600, completion_tokens=100))] * 2, clock=clock)
    limiter = ModelRateLimiter({"m": (None, 600)}, clock=clock)  # 10 tokens per second, 600 banked
    llm = RateLimitedLLM(fake, limiter)
    request = _request(text="x" * 40)
    estimate = estimate_prompt_tokens(request.messages, request.tools)
    await llm.complete(request)
    # The call used 700 of the 600 banked: 100 tokens of debt, then the next estimate to wait for.
    start = clock.monotonic()
    await llm.complete(request)
    assert clock.monotonic() - start == pytest.approx((100 + estimate) / 10.0)
    assert fake.remaining == 0


async def test_unlimited_models_pass_straight_through() -> None:
    clock = FakeClock()
    fake = ScriptedLLM(["ok"], clock=clock)
    llm = RateLimitedLLM(fake, ModelRateLimiter({"m": (1, 1)}, clock=clock))
    response = await llm.complete(_request("other", "x" * 10_000))
    assert response.text == "ok" and clock.sleeps == []


def test_the_estimate_rounds_up_as_the_budget_does() -> None:
    messages = [{"role": "user", "content": "abcde"}]  # 38 JSON characters: 9.5 tokens
    assert estimate_prompt_tokens(messages, None) == 10
    assert estimate_prompt_tokens([], None) == 1
