"""The fetcher's fetch, wrapped by `long_poll`: the reader waiting for records is woken by
the fetch that brought them, not turns later by aiokafka's fetch loop (which sends no new
fetch to a broker while that broker's records wait for the reader)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.kafka.long_poll import AdaptiveWait, FlowingBatch, LongPollConsumer, _handing_over_at_once


class Fetcher:
    """The attributes of aiokafka's Fetcher that the wrappers touch."""

    def __init__(self) -> None:
        self._fetch_waiters: set[asyncio.Future[None]] = set()
        self._fetch_min_bytes = 1
        self._fetch_max_wait_ms = 0
        self._records: dict[Any, Any] = {}

    def _notify(self, future: asyncio.Future[None]) -> None:
        if not future.done():
            future.set_result(None)


def planner(fetcher: Fetcher) -> AdaptiveWait:
    return AdaptiveWait(fetcher, lambda assignment: "planned", 5000, 50, FlowingBatch(min_bytes=4096, wait_ms=300))


async def fetched(brought_records: bool) -> asyncio.Future[None]:
    """A reader's waiter after one wrapped fetch that brought records, or not."""
    fetcher = Fetcher()
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fetcher._fetch_waiters.add(waiter)

    async def fetch(*_: Any) -> bool:
        return brought_records

    assert await _handing_over_at_once(fetcher, fetch, planner(fetcher))(None, 0, None) is brought_records
    return waiter


async def test_the_reader_is_woken_when_the_fetch_brings_records() -> None:
    assert (await fetched(True)).done()  # before aiokafka's loop has had a turn to notice


async def test_an_empty_fetch_wakes_nobody() -> None:
    assert not (await fetched(False)).done()


class Assignment:
    tps = ()


async def test_the_next_fetch_waits_for_a_batch_only_after_one_that_brought_records() -> None:
    fetcher = Fetcher()
    plan = planner(fetcher)
    outcomes = iter([True, False])

    async def fetch(*_: Any) -> bool:
        return next(outcomes)

    wrapped = _handing_over_at_once(fetcher, fetch, plan)
    plan(Assignment())
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (1, 5000)  # quiet: long poll
    await wrapped(None, 0, None)  # records came
    plan(Assignment())
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (4096, 300)  # flowing: a batch
    await wrapped(None, 0, None)  # came back empty
    plan(Assignment())
    assert (fetcher._fetch_min_bytes, fetcher._fetch_max_wait_ms) == (1, 5000)


def test_a_consumer_that_would_wait_for_bytes_is_refused_with_what_to_use_instead() -> None:
    """With fetch_min_bytes above 1 a record no longer answers a held fetch: a lone record on a
    quiet topic would wait out the whole long poll. Batching is `flowing=`, which long-polls
    again once the records stop."""
    with pytest.raises(ValueError, match="flowing="):
        LongPollConsumer("t", bootstrap_servers="unused:9092", fetch_min_bytes=1 << 20)
