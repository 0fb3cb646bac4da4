from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.connectors.webhook import RetryPolicy
from app.connectors.webhook.retry_policy import backoff_delay, decide, retry_after_seconds

POLICY = RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=30.0)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_server_errors_timeouts_and_throttling_are_retried(status: int) -> None:
    decision = decide(POLICY, 1, status=status, rand=lambda: 1.0)
    assert decision.retry
    assert decision.reason == f"HTTP {status}"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422, 301, 302])
def test_other_client_errors_and_redirects_are_final_at_once(status: int) -> None:
    decision = decide(POLICY, 1, status=status)
    assert not decision.retry
    assert decision.reason.startswith(f"HTTP {status}")
    assert "final" in decision.reason


def test_network_errors_are_retried() -> None:
    decision = decide(POLICY, 2, network_error="ClientConnectorError: refused", rand=lambda: 0.5)
    assert decision.retry and decision.reason == "network error: ClientConnectorError: refused"
    assert decision.delay_s == pytest.approx(1.0)  # half of 2 s


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    ceilings = [backoff_delay(POLICY, attempt, rand=lambda: 1.0) for attempt in range(1, 8)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff_delay(POLICY, 3, rand=lambda: 0.0) == 0.0
    assert backoff_delay(POLICY, 3, rand=lambda: 0.25) == pytest.approx(1.0)


def test_the_last_attempt_is_final_with_its_count() -> None:
    decision = decide(POLICY, 5, status=503)
    assert not decision.retry
    assert decision.reason == "HTTP 503 after 5 attempts"


def test_retry_after_seconds_is_honoured_on_429_and_503() -> None:
    assert decide(POLICY, 1, status=429, retry_after="7", rand=lambda: 0.0).delay_s == 7.0
    assert decide(POLICY, 1, status=503, retry_after="3", rand=lambda: 0.0).delay_s == 3.0
    # Not asked for on a 500: the back-off applies.
    assert decide(POLICY, 1, status=500, retry_after="7", rand=lambda: 0.5).delay_s == pytest.approx(0.5)


def test_retry_after_is_capped_by_the_policy() -> None:
    assert decide(POLICY, 1, status=429, retry_after="3600").delay_s == 30.0


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Tue, 01 Dec 2026 12:00:10 GMT", now) == pytest.approx(10.0)
    assert retry_after_seconds("Tue, 01 Dec 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
    delay = decide(POLICY, 1, status=429, retry_after="Tue, 01 Dec 2026 12:00:04 GMT", now=now).delay_s
    assert delay == pytest.approx(4.0)


def test_unreadable_retry_after_falls_back_to_backoff() -> None:
    assert decide(POLICY, 1, status=429, retry_after="later", rand=lambda: 0.5).delay_s == pytest.approx(0.5)
