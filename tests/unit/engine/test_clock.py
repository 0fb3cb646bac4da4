"""Timeouts on the run clock: a FakeClock expires them in virtual time, exactly."""

from __future__ import annotations

import asyncio

import pytest

from app.engine import FakeClock, SystemClock


async def test_a_sleep_across_a_timeout_stops_at_it_with_timeout_error() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    with pytest.raises(TimeoutError):
        async with clock.timeout(5) as scope:
            await clock.sleep(20)
    assert scope.expired()
    assert clock.monotonic() - start == 5.0


async def test_a_block_that_ends_in_time_is_not_expired_and_leaves_no_timer() -> None:
    clock = FakeClock()
    async with clock.timeout(5) as scope:
        await clock.sleep(4)
    assert not scope.expired()
    await clock.sleep(10)  # the scope is gone: nothing to expire any more
    assert clock.sleeps == [4, 10]


async def test_the_inner_of_two_timeouts_expires_first() -> None:
    clock = FakeClock()
    with pytest.raises(TimeoutError):
        async with clock.timeout(60) as outer, clock.timeout(5) as inner:
            await clock.sleep(30)
    assert inner.expired() and not outer.expired()


async def test_advance_expires_a_timeout_of_a_block_waiting_on_something_else() -> None:
    clock = FakeClock()
    never = asyncio.Event()

    async def wait() -> None:
        async with clock.timeout(3):
            await never.wait()

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    clock.advance(2)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1)
    with pytest.raises(TimeoutError):
        await task


async def test_a_timeout_of_another_task_does_not_cancel_the_sleeper() -> None:
    clock = FakeClock()
    never = asyncio.Event()

    async def bounded() -> None:
        async with clock.timeout(1):
            await never.wait()

    other = asyncio.create_task(bounded())
    await asyncio.sleep(0)
    await clock.sleep(10)  # crosses the other task's timeout: only that task times out
    with pytest.raises(TimeoutError):
        await other
    assert clock.sleeps == [10]


async def test_no_timeout_never_expires() -> None:
    clock = FakeClock()
    async with clock.timeout(None) as scope:
        await clock.sleep(1e9)
    assert not scope.expired()


async def test_the_system_clock_times_out_on_real_time() -> None:
    with pytest.raises(TimeoutError):
        async with SystemClock().timeout(0.01) as scope:
            await asyncio.sleep(5)
    assert scope.expired()
