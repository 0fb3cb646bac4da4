"""Per-key request rate limit: a token bucket per API key, held by one API instance.

A bucket refills at `rate` tokens per second up to `burst`; a request takes one token or
is refused with the seconds until one is there (the `Retry-After` a client honours).
Buckets live in the app's state object, one per process: behind several API instances
a key's limit is per instance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds to wait before retrying."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    """Retry-After is whole seconds: round up so a client that honours it gets through."""
    return str(max(1, math.ceil(seconds)))
