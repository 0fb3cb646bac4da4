"""Model rate limits from `ferry.yaml` (requests and tokens per minute), shared by every run.

Provider quotas are per model, not per agent, so one `ModelRateLimiter` per worker holds
a token bucket per limited model and every LLM call of every agent takes from it; a
call that would exceed the quota waits instead of failing with a 429. Tokens are not
known before the call: the call takes the engine's estimate (the budget's, prompt
characters / 4 rounded up) and settles the difference afterwards, so an underestimate makes later callers wait longer. Workers
do not share buckets: with N workers give each `rate_share = 1/N` of the quota.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from app.engine.budget import estimate_prompt_tokens
from app.engine.clock import Clock, SystemClock
from app.engine.model import LLMClient, LLMRequest, LLMResponse
from app.project.config import ProjectConfig

_EPSILON = 1e-6  # units


class TokenBucket:
    """`rate` units per second, at most `capacity` banked; the level may go negative (debt)."""

    def __init__(self, rate: float, capacity: float, clock: Clock) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be > 0")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._level = capacity
        self._updated = clock.monotonic()
        self._lock = asyncio.Lock()

    @property
    def level(self) -> float:
        self._refill()
        return self._level

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._level = min(self.capacity, self._level + (now - self._updated) * self.rate)
        self._updated = now

    def wait_time(self, amount: float) -> float:
        """Seconds until `amount` can be taken (a demand above capacity waits for a full bucket)."""
        self._refill()
        need = min(amount, self.capacity)
        # A shortfall below _EPSILON is float rounding of the last refill, not a real one:
        # waiting for it could add less than the clock's resolution and never end.
        return 0.0 if self._level >= need - _EPSILON else (need - self._level) / self.rate

    async def take(self, amount: float) -> float:
        """Take `amount`, waiting as long as needed; returns the seconds waited. FIFO among callers."""
        waited = 0.0
        async with self._lock:
            while (delay := self.wait_time(amount)) > 0:
                await self._clock.sleep(delay)
                waited += delay
            self._level -= amount
        return waited

    def settle(self, amount: float) -> None:
        """Add (negative: give back) units after the fact."""
        self._refill()
        self._level = min(self.capacity, self._level - amount)


class ModelRateLimiter:
    def __init__(
        self, limits: Mapping[str, tuple[int | None, int | None]], *, clock: Clock | None = None, share: float = 1.0
    ) -> None:
        self._clock = clock or SystemClock()
        self._requests: dict[str, TokenBucket] = {}
        self._tokens: dict[str, TokenBucket] = {}
        for model, (rpm, tpm) in limits.items():
            if rpm:
                per_minute = rpm * share
                self._requests[model] = TokenBucket(per_minute / 60.0, max(1.0, per_minute), self._clock)
            if tpm:
                per_minute = tpm * share
                self._tokens[model] = TokenBucket(per_minute / 60.0, max(1.0, per_minute), self._clock)
        self.waited_seconds = 0.0

    @classmethod
    def from_config(cls, config: ProjectConfig, *, clock: Clock | None = None, share: float = 1.0) -> ModelRateLimiter:
        limits = {m: (o.requests_per_minute, o.tokens_per_minute) for m, o in config.models.items()}
        return cls(limits, clock=clock, share=share)

    def limits(self, model: str) -> bool:
        return model in self._requests or model in self._tokens

    async def acquire(self, model: str, estimated_tokens: int) -> None:
        if (bucket := self._requests.get(model)) is not None:
            self.waited_seconds += await bucket.take(1)
        if (bucket := self._tokens.get(model)) is not None:
            self.waited_seconds += await bucket.take(estimated_tokens)

    def settle(self, model: str, estimated_tokens: int, actual_tokens: int) -> None:
        if (bucket := self._tokens.get(model)) is not None:
            bucket.settle(actual_tokens - estimated_tokens)


class RateLimitedLLM:
    """An `LLMClient` that takes from the model's buckets before every call of `inner`."""

    def __init__(self, inner: LLMClient, limiter: ModelRateLimiter) -> None:
        self._inner = inner
        self._limiter = limiter

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if not self._limiter.limits(request.model):
            return await self._inner.complete(request)
        estimate = estimate_prompt_tokens(request.messages, request.tools)
        await self._limiter.acquire(request.model, estimate)
        response = await self._inner.complete(request)
        self._limiter.settle(request.model, estimate, response.usage.total_tokens)
        return response
