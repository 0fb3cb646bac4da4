"""The projector on the real broker: topics → store, offsets committed after the write,
replays that change nothing, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.contracts import RunResult, RunStatus, SpanEvent
from app.contracts.errors import ErrorCategory
from app.observability.history import HistoryStore, RunFilter, RunRecord, SpanRecord
from app.observability.history.store import PreparedBatch
from app.streams import TopicNames
from tests.integration.kafka_helpers import produce, unique, wait_for
from tests.integration.observability.conftest import PARTITIONS, ProjectorFactory, publish, wait_for_counts
from tests.unit.observability.history_samples import failed_tool_spans, llm_run_spans, pipeline_results, result

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def workload(count: int = 12) -> tuple[list[RunResult], list[SpanEvent]]:
    """Plain runs (some failed, one redone after a crash), a pipeline, and their spans."""
    results: list[RunResult] = []
    spans: list[SpanEvent] = []
    for i in range(count):
        run_id = f"run-{i:03d}"
        start = NOW + timedelta(seconds=i)
        if i % 4 == 3:
            results.append(result(run_id, start=start, status=RunStatus.FAILED, category=ErrorCategory.TOOL_TIMEOUT))
            spans.extend(failed_tool_spans(run_id, start=start))
        else:
            results.append(result(run_id, start=start, cost=0.0001 * i))
            spans.extend(llm_run_spans(run_id, start=start))
    results.append(result("run-000", start=NOW, seconds=9, cost=0.5))  # the redone run: its last result wins
    results.extend(pipeline_results(f"pipe-{count}", ["extract", "validate", "store"], start=NOW))
    return results, spans


def history(store: HistoryStore) -> tuple[list[RunRecord], list[SpanRecord]]:
    runs = sorted(_all_runs(store), key=lambda r: r.run_id)
    spans = sorted(store.spans([r.run_id for r in runs]), key=lambda s: s.span_id)
    return runs, spans


def _all_runs(store: HistoryStore) -> list[RunRecord]:
    return store.runs(RunFilter(limit=100_000))


async def committed_offsets(bootstrap: str, group: str, names: TopicNames) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        totals: dict[str, int] = {}
        for topic in (names.results, names.traces):
            for partition in range(PARTITIONS):
                offset = await consumer.committed(TopicPartition(topic, partition))
                totals[topic] = totals.get(topic, 0) + (offset or 0)
        return totals
    finally:
        await consumer.stop()


async def test_results_and_spans_reach_the_store_and_offsets_follow(
    kafka_bootstrap: str, names: TopicNames, make_projector: ProjectorFactory, sqlite_url: Callable[[], str]
) -> None:
    results, spans = workload()
    await publish(kafka_bootstrap, names, results, spans)
    await produce(kafka_bootstrap, names.results, [(b"junk", b"not json"), (b"x", b'{"run_id": "no-fields"}')])
    projector = make_projector(sqlite_url())
    await projector.start()
    assert projector.store is not None
    distinct_runs = len({r.run_id for r in results})
    await wait_for_counts(projector.store, distinct_runs, len(spans))
    runs = {r.run_id: r for r in _all_runs(projector.store)}
    assert runs["run-000"].duration_ms == 9000 and runs["run-000"].cost_usd == 0.5  # the later result won
    assert runs["run-003"].error_category == "tool_timeout"
    assert runs["pipe-12"].kind == "pipeline" and runs["pipe-12-s2"].parent_run_id == "pipe-12-s1"
    # More records arrive while it runs: they follow within the poll interval.
    late = result("late-run", start=NOW)
    await publish(kafka_bootstrap, names, [late], llm_run_spans("late-run", start=NOW))
    await wait_for_counts(projector.store, distinct_runs + 1, len(spans) + 7)
    await projector.stop()
    assert projector.stats.undecodable == 2
    offsets = await committed_offsets(kafka_bootstrap, projector.settings.group_id, names)
    assert offsets == {names.results: len(results) + 2 + 1, names.traces: len(spans) + 7}


async def test_an_idle_projector_stops_at_once_whatever_its_poll(
    make_projector: ProjectorFactory, sqlite_url: Callable[[], str]
) -> None:
    projector = make_projector(sqlite_url(), poll_ms=600_000)
    await projector.start()
    consumer = projector._consumer
    assert consumer is not None
    await wait_for(lambda: consumer._fetcher._fetch_waiters, 30, what="the projector waiting for records")
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await projector.stop()
    assert loop.time() - asked < projector.settings.stop_timeout_s / 3  # not cut off at the stop timeout
    assert not projector.running


async def test_replaying_the_topics_into_an_empty_store_gives_the_same_history(
    kafka_bootstrap: str,
    names: TopicNames,
    make_projector: ProjectorFactory,
    store_url: Callable[[], str],
    sqlite_url: Callable[[], str],
) -> None:
    results, spans = workload()
    await publish(kafka_bootstrap, names, results, spans)
    distinct_runs = len({r.run_id for r in results})

    first = make_projector(store_url(), group_id=unique("g1"))
    await first.start()
    assert first.store is not None
    await wait_for_counts(first.store, distinct_runs, len(spans))
    original = history(first.store)

    # A new group reads both topics from the start: into an empty store…
    rebuilt = make_projector(store_url(), group_id=unique("g2"), batch_size=7)
    await rebuilt.start()
    assert rebuilt.store is not None
    await wait_for_counts(rebuilt.store, distinct_runs, len(spans))
    assert history(rebuilt.store) == original

    # …and over the full one, which it leaves as it was.
    again = make_projector(store=first.store, group_id=unique("g3"))
    await again.start()
    await _wait_consumed(again, len(results), len(spans))
    assert history(first.store) == original

    # The same history whatever the backend: a SQLite rebuild equals this one.
    on_sqlite = make_projector(sqlite_url(), group_id=unique("g4"))
    await on_sqlite.start()
    assert on_sqlite.store is not None
    await wait_for_counts(on_sqlite.store, distinct_runs, len(spans))
    assert history(on_sqlite.store) == original


async def _wait_consumed(projector: Any, results: int, spans: int, timeout: float = 60) -> None:
    """Until the projector has written this many records (again: into a store that had them)."""
    async with asyncio.timeout(timeout):
        while True:
            if (projector.stats.runs, projector.stats.spans) == (results, spans):
                return
            await asyncio.sleep(0.1)


async def test_a_batch_stored_but_not_committed_is_replayed_without_duplicates(
    kafka_bootstrap: str, names: TopicNames, make_projector: ProjectorFactory, sqlite_url: Callable[[], str]
) -> None:
    results, spans = workload(6)
    await publish(kafka_bootstrap, names, results, spans)
    distinct_runs = len({r.run_id for r in results})
    url = sqlite_url()
    crashing = make_projector(url)

    async def no_commit(consumer: Any) -> None:  # the process dies between write and commit
        return None

    crashing._commit = no_commit  # type: ignore[method-assign]
    await crashing.start()
    assert crashing.store is not None
    await wait_for_counts(crashing.store, distinct_runs, len(spans))
    before = history(crashing.store)
    await crashing.stop()
    assert await committed_offsets(kafka_bootstrap, crashing.settings.group_id, names) == {
        names.results: 0,
        names.traces: 0,
    }

    successor = make_projector(url)  # same group: it gets the uncommitted records again
    await successor.start()
    await _wait_consumed(successor, len(results), len(spans))
    assert successor.store is not None and history(successor.store) == before
    assert successor.store.counts() == (distinct_runs, len(spans))


async def test_a_failing_store_delays_history_and_loses_nothing(
    kafka_bootstrap: str, names: TopicNames, make_projector: ProjectorFactory, sqlite_url: Callable[[], str]
) -> None:
    from sqlalchemy.exc import OperationalError

    store = HistoryStore.open(sqlite_url())
    real_write = store.write_prepared
    failures = {"left": 2}

    def flaky_write(*args: Any, **kwargs: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT …", {}, Exception("database is locked"))
        real_write(*args, **kwargs)

    store.write_prepared = flaky_write  # type: ignore[method-assign]
    projector = make_projector(store=store, retry_backoff_s=0.05)
    await projector.start()
    results, spans = workload(4)
    await publish(kafka_bootstrap, names, results, spans)
    await wait_for_counts(store, len({r.run_id for r in results}), len(spans))
    assert projector.stats.write_failures == 2
    await projector.stop()
    offsets = await committed_offsets(kafka_bootstrap, projector.settings.group_id, names)
    assert offsets == {names.results: len(results), names.traces: len(spans)}
    store.close()


async def test_projectors_in_one_group_share_the_partitions(
    kafka_bootstrap: str, names: TopicNames, make_projector: ProjectorFactory, sqlite_url: Callable[[], str]
) -> None:
    store = HistoryStore.open(sqlite_url())
    one, two = make_projector(store=store), make_projector(store=store)
    await one.start()
    await two.start()
    results, spans = workload(30)
    await publish(kafka_bootstrap, names, results, spans)
    await wait_for_counts(store, len({r.run_id for r in results}), len(spans), timeout=90)
    await one.stop()
    await two.stop()
    assert one.stats.runs + one.stats.spans > 0 and two.stats.runs + two.stats.spans > 0
    # Each record was stored by one of them (a rebalance may hand a batch to both: then
    # the later upsert rewrote the same row, which the counts above already show).
    assert one.stats.runs + two.stats.runs >= len(results)
    store.close()


async def test_records_past_retention_are_not_stored_again_by_a_replay(
    kafka_bootstrap: str, names: TopicNames, make_projector: ProjectorFactory, sqlite_url: Callable[[], str]
) -> None:
    old = NOW - timedelta(days=45)
    await publish(
        kafka_bootstrap,
        names,
        [result("ancient", start=old), result("recent", start=NOW)],
        [*llm_run_spans("ancient", start=old), *llm_run_spans("recent", start=NOW)],
    )
    projector = make_projector(sqlite_url(), retention_days=30)
    await projector.start()
    assert projector.store is not None
    await wait_for_counts(projector.store, 1, 7)
    assert [r.run_id for r in _all_runs(projector.store)] == ["recent"]
    assert projector.stats.expired == 8


async def test_a_record_the_database_refuses_is_skipped_not_blocking_the_rest(
    kafka_bootstrap: str, names: TopicNames, make_projector: ProjectorFactory, sqlite_url: Callable[[], str]
) -> None:
    from sqlalchemy.exc import DataError

    store = HistoryStore.open(sqlite_url())
    real_write = store.write_prepared

    def refusing_write(batch: PreparedBatch) -> None:
        """The database refuses the poison run's row, in a batch or alone (`write_each`)."""
        if any("poison" in (row.values() if isinstance(row, dict) else row) for row in batch.runs):
            raise DataError("INSERT …", {}, Exception("value out of range"))
        real_write(batch)

    store.write_prepared = refusing_write  # type: ignore[method-assign]
    projector = make_projector(store=store, retry_backoff_s=0.05)
    await projector.start()
    results, spans = workload(4)
    await publish(kafka_bootstrap, names, [results[0], result("poison", start=NOW), *results[1:]], spans)
    await wait_for_counts(store, len({r.run_id for r in results}), len(spans))
    await projector.stop()
    assert projector.stats.refused == 1 and projector.stats.write_failures == 0
    assert "poison" not in {r.run_id for r in _all_runs(store)}
    offsets = await committed_offsets(kafka_bootstrap, projector.settings.group_id, names)
    assert offsets == {names.results: len(results) + 1, names.traces: len(spans)}  # nothing held back
    store.close()
