"""Kafka consumers that cost nothing while their topics are quiet and add no latency when they are not.

aiokafka keeps one fetch in flight per broker, and the broker holds it for up to
`fetch_max_wait_ms` unless a record arrives for a partition in it. So a long wait costs no
latency while the fetch covers every assigned partition: a record anywhere answers it at once.
It costs latency only for a partition left out of the fetch under way (its records still in
hand, paused, or waiting for an offset reset): a record for it waits until that fetch returns.
A fixed short wait, the usual cure, polls the broker `1000 / wait` times a second per consumer
for ever; a worker runs a dozen consumers, and an idle one spent its CPU doing that
(bench/bench_idle.py).

`long_poll` makes the wait follow that rule: `idle_wait_ms` while a fetch covers every
assigned partition, `busy_wait_ms` while one is left out. It also stops aiokafka's fetch loop
from waking every 200 ms (`consumer_timeout_ms`) to find nothing to do: everything the loop
acts on (a fetch answered, records taken, a partition resumed or unassigned) wakes it anyway.

A broker answers one request per connection at a time, so a request sent on the connection
of a held fetch waits for it: an offset lookup (`end_offsets`, to catch up) would wait up to
`idle_wait_ms`. `LongPollConsumer` sends its offset lookups through a second consumer that
never fetches. Requests of the group (heartbeats, commits) have their own connection.

Two more things a busy consumer needs. aiokafka sends no fetch to a broker at all while
records it fetched from it wait for the reader (for up to 100 ms), so the reader is woken
by the fetch that brought them rather than turns later (`_handing_over_at_once`). And a
consumer that reads every record of a busy topic without hurry can batch while records
flow (`FlowingBatch`) and still long-poll when they stop.

aiokafka offers no hook for this: it is set on its fetcher, whose request is built in
`_get_actions_per_node` from `_fetch_max_wait_ms` and `_fetch_min_bytes`, and whose
`_proc_fetch_request` sends it (aiokafka 0.14, pinned in constraints.txt;
tests/integration/test_long_poll.py fails if that changes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer

#: How long the broker may hold a fetch that covers every assigned partition.
IDLE_WAIT_MS = 2000

#: How long a loop's `getmany` on a `LongPollConsumer` waits for records. A record ends the
#: wait at once, and so does `stop_waiting`, so this bounds only how often an idle loop wakes.
IDLE_POLL_MS = 5000

#: What the offset-lookup consumer copies: how to reach and authenticate to the cluster.
_CONNECTION_SETTINGS = (
    "bootstrap_servers",
    "client_id",
    "request_timeout_ms",
    "retry_backoff_ms",
    "metadata_max_age_ms",
    "connections_max_idle_ms",
    "api_version",
    "security_protocol",
    "ssl_context",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "sasl_kerberos_service_name",
    "sasl_kerberos_domain_name",
    "sasl_oauth_token_provider",
)


class LongPollConsumer(AIOKafkaConsumer):  # type: ignore[misc]  # aiokafka ships no types
    """An `AIOKafkaConsumer` whose fetches long-poll while they cover every assigned partition.

    `fetch_max_wait_ms` is the wait while a partition is left out of the fetch under way
    (the latency such a partition's next record may see); `idle_wait_ms` the wait otherwise.
    A `seek` moves the position at once but a held fetch still answers for the old one:
    on a quiet topic the first records from the new position come up to `idle_wait_ms`
    later, so seek right after `assign` (before the first fetch is planned) or rely on
    `auto_offset_reset`.

    `fetch_min_bytes` stays 1 (a `ValueError` otherwise): with more a record no longer
    answers a held fetch, and a lone record on a quiet topic would wait out the long poll.

    `stop_waiting` ends a `getmany` wait at once, so a loop that stops on a flag can wait
    long for records and still stop without waiting out its poll.

    `flowing` batches only while records flow: after a fetch that brought records, the
    next one waits for `FlowingBatch.min_bytes` or `wait_ms`; after one that came back
    empty, the consumer long-polls again, so the first record after a quiet spell still
    arrives at once. For a consumer of a busy topic that tolerates `wait_ms` of delay under
    load (a worker's webhook connector and history projector read every result), which
    otherwise fetched once per record.
    """

    def __init__(
        self, *topics: str, idle_wait_ms: int = IDLE_WAIT_MS, flowing: FlowingBatch | None = None, **kwargs: Any
    ) -> None:
        if int(kwargs.get("fetch_min_bytes", 1)) != 1:
            raise ValueError("a long-polling consumer fetches from 1 byte; to batch while records flow, pass flowing=")
        super().__init__(*topics, **kwargs)
        self._busy_wait_ms = int(kwargs.get("fetch_max_wait_ms", 500))
        self._idle_wait_ms = idle_wait_ms
        self._flowing = flowing
        self._connection_settings = {name: kwargs[name] for name in _CONNECTION_SETTINGS if name in kwargs}
        self._offset_reader: AIOKafkaConsumer | None = None
        self._offset_reader_started = asyncio.Lock()
        self._waiting: asyncio.Timeout | None = None  # the pending getmany's
        self._waits_stopped = False

    async def start(self) -> None:
        await super().start()
        long_poll(self, idle_wait_ms=self._idle_wait_ms, busy_wait_ms=self._busy_wait_ms, flowing=self._flowing)

    async def stop(self) -> None:
        reader, self._offset_reader = self._offset_reader, None
        try:
            await super().stop()
        finally:
            if reader is not None:
                await reader.stop()

    async def getmany(
        self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[Any, list[Any]]:
        """aiokafka's `getmany`, except that after `stop_waiting` it waits for nothing: it
        returns the records in hand, if any, at once."""
        if self._waits_stopped:
            timeout_ms = 0
        try:
            async with asyncio.timeout(None) as self._waiting:
                return await super().getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)  # type: ignore[no-any-return]
        except TimeoutError:
            if self._waiting is not None and self._waiting.expired():
                return {}  # stop_waiting cut the wait short: nothing had arrived
            raise
        finally:
            self._waiting = None

    def stop_waiting(self) -> None:
        """End the pending `getmany`'s wait now, and every later one's before it starts."""
        self._waits_stopped = True
        if self._waiting is not None and not self._waiting.expired():
            self._waiting.reschedule(asyncio.get_running_loop().time())

    async def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return await (await self._offsets()).end_offsets(partitions)  # type: ignore[no-any-return]

    async def beginning_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return await (await self._offsets()).beginning_offsets(partitions)  # type: ignore[no-any-return]

    async def offsets_for_times(self, timestamps: dict[Any, int]) -> dict[Any, Any]:
        return await (await self._offsets()).offsets_for_times(timestamps)  # type: ignore[no-any-return]

    async def _offsets(self) -> AIOKafkaConsumer:
        """The consumer that answers offset lookups, started on first use: it is assigned
        nothing, so it never fetches and its connection is never held."""
        async with self._offset_reader_started:
            if self._offset_reader is None:
                reader = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self._connection_settings)
                try:
                    await reader.start()
                except BaseException:
                    await reader.stop()
                    raise
                self._offset_reader = reader
            return self._offset_reader


@dataclass(frozen=True)
class FlowingBatch:
    """What a fetch waits for while records flow (`LongPollConsumer(flowing=…)`)."""

    min_bytes: int
    wait_ms: int


def long_poll(
    consumer: AIOKafkaConsumer,
    *,
    idle_wait_ms: int = IDLE_WAIT_MS,
    busy_wait_ms: int,
    flowing: FlowingBatch | None = None,
) -> None:
    """Make a started consumer's fetch wait `idle_wait_ms` while it covers every assigned
    partition and `busy_wait_ms` while one is left out (for consumers built by others, faust's)."""
    fetcher = getattr(consumer, "_fetcher", None)
    plan = getattr(fetcher, "_get_actions_per_node", None)
    if fetcher is None or plan is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
        raise RuntimeError("long_poll needs a started aiokafka 0.14 consumer (its fetcher was not found)")
    planner = AdaptiveWait(fetcher, plan, idle_wait_ms, busy_wait_ms, flowing)
    fetcher._get_actions_per_node = planner
    fetcher._fetcher_timeout = idle_wait_ms / 1000
    fetcher._proc_fetch_request = _handing_over_at_once(fetcher, fetcher._proc_fetch_request, planner)


def _handing_over_at_once(fetcher: Any, fetch: Callable[..., Any], planner: AdaptiveWait) -> Callable[..., Any]:
    """The fetcher's fetch, waking the reader as soon as its records are in hand.

    aiokafka sends no fetch to a broker while records it fetched from it wait for the
    reader, and wakes the reader from its fetch loop only after that loop has woken: six
    event-loop turns from a response to the next fetch, during which nothing is fetched.
    On a busy worker those turns took 2 ms at the median and 10 ms at p99, the largest part
    of a request's paced tail (bench/RESULTS.md, "The consumer on the worker's loop"). Woken
    here, the reader takes the records two turns after the response, and the fetch loop,
    waking in the same turn after it, finds nothing in hand and fetches again at once.
    """

    async def fetch_then_hand_over(assignment: Any, node_id: Any, request: Any) -> Any:
        try:
            has_new_data = await fetch(assignment, node_id, request)
        except asyncio.CancelledError:
            # Only the fetcher cancels a fetch (closing, or a new assignment), and it awaits
            # the task unguarded: aiokafka's fetch returns False when cancelled waiting for the
            # broker, but not in its back-off after a broker error, which then failed the
            # consumer's stop with the broker gone (tests/integration/streams/test_broker_outage.py).
            return False
        planner.flowing = bool(has_new_data)
        if has_new_data:
            for waiter in fetcher._fetch_waiters:
                fetcher._notify(waiter)  # the loop's own notice follows and finds it done
        return has_new_data

    return fetch_then_hand_over


class AdaptiveWait:
    """The fetcher's request planner, wrapped: sets the wait (and, while records flow, the
    bytes) of the fetch it plans."""

    def __init__(
        self,
        fetcher: Any,
        plan: Callable[[Any], Any],
        idle_wait_ms: int,
        busy_wait_ms: int,
        flowing_batch: FlowingBatch | None = None,
    ) -> None:
        self.idle_wait_ms = idle_wait_ms
        self.busy_wait_ms = busy_wait_ms
        self.flowing_batch = flowing_batch
        self.flowing = False  # the last fetch brought records
        self._min_bytes = fetcher._fetch_min_bytes
        self._fetcher = fetcher
        self._plan = plan

    def __call__(self, assignment: Any) -> Any:
        fetcher = self._fetcher
        if self.flowing and self.flowing_batch is not None:
            fetcher._fetch_min_bytes = self.flowing_batch.min_bytes
            fetcher._fetch_max_wait_ms = self.flowing_batch.wait_ms
        else:
            fetcher._fetch_min_bytes = self._min_bytes
            covered = covers_every_partition(fetcher, assignment)
            fetcher._fetch_max_wait_ms = self.idle_wait_ms if covered else self.busy_wait_ms
        return self._plan(assignment)


def covers_every_partition(fetcher: Any, assignment: Any) -> bool:
    """Whether the next fetch would ask for every assigned partition: none has records in
    hand, is paused, or waits for an offset reset."""
    if fetcher._records:
        return False
    for tp in assignment.tps:
        state = assignment.state_value(tp)
        if state.paused or not state.has_valid_position:
            return False
    return True
