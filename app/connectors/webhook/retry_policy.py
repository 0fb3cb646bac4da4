"""When a failed attempt is tried again, and after how long: retries as data.

A receiver's answer (or the absence of one) becomes a `Decision`. 5xx, 408, 429 and
network errors are worth another attempt, with exponential back-off and full jitter so
that many deliveries failed at once do not return together; a 429 or 503 that says
`Retry-After` is waited out as asked (capped). Any other 4xx means the request itself is
wrong for that receiver: sending it again cannot help, so it is final at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from pydantic import BaseModel, ConfigDict, Field


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(default=6, ge=1, le=50, description="Attempts in all, the first included.")
    base_delay_s: float = Field(default=1.0, gt=0, description="Ceiling of the first wait; doubles per attempt.")
    max_delay_s: float = Field(default=60.0, gt=0, description="No wait (back-off or Retry-After) is longer.")


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay_s: float
    reason: str


_RETRYABLE_4XX = frozenset({408, 429})


def backoff_delay(policy: RetryPolicy, attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))] after attempt `attempt` (1-based)."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** (attempt - 1))
    return ceiling * rand()


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def decide(
    policy: RetryPolicy,
    attempt: int,
    *,
    status: int | None = None,
    retry_after: str | None = None,
    network_error: str | None = None,
    rand: Callable[[], float] = random.random,
    now: datetime | None = None,
) -> Decision:
    """What to do after attempt `attempt` (1-based) failed with `status` or `network_error`."""
    if network_error is not None:
        reason = f"network error: {network_error}"
    elif status is not None and (status >= 500 or status in _RETRYABLE_4XX):
        reason = f"HTTP {status}"
    else:
        reason = f"HTTP {status}" + (
            "" if status is None or status >= 400 else " (not a 2xx; redirects are not followed)"
        )
        return Decision(retry=False, delay_s=0.0, reason=reason + ", final")
    if attempt >= policy.max_attempts:
        return Decision(retry=False, delay_s=0.0, reason=f"{reason} after {attempt} attempts")
    delay = backoff_delay(policy, attempt, rand)
    asked = retry_after_seconds(retry_after, now) if status in (429, 503) else None
    if asked is not None:
        delay = min(policy.max_delay_s, asked)
    return Decision(retry=True, delay_s=delay, reason=reason)
