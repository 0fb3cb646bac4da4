from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.engine.clock import Deadline, FakeClock
from app.engine.error_mapping import retry_after_seconds


class _Exc(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("429")
        self.litellm_response_headers = headers


def test_retry_after_seconds_ms_and_http_date() -> None:
    assert retry_after_seconds(_Exc({"retry-after": "7"})) == 7
    assert retry_after_seconds(_Exc({"Retry-After": "2.5"})) == 2.5
    assert retry_after_seconds(_Exc({"retry-after-ms": "1500"})) == 1.5
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(_Exc({"retry-after": when})) == pytest.approx(30, abs=2)
    assert retry_after_seconds(_Exc({"retry-after": "soon"})) is None
    assert retry_after_seconds(_Exc({})) is None


def test_deadline_caps_and_narrows() -> None:
    clock = FakeClock()
    deadline = Deadline(clock, 10)
    assert deadline.cap(30) == 10 and deadline.cap(3) == 3
    assert deadline.narrowed(5).remaining() == 5
    assert deadline.narrowed(50) is deadline
    clock.advance(11)
    assert deadline.expired() and deadline.cap(3) == 0
    assert Deadline(clock, None).cap(3) == 3 and Deadline(clock, None).narrowed(None).remaining() is None
