"""The cancel bookkeeping that needs no broker: the bounded id set, the queue withdrawal,
and which partition a run id's result is read back from."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from app.streams.cancellations import CancellationFeed
from app.streams.client import _partitions_of
from app.streams.lane_core import LaneCore, Ticket


def test_the_feed_keeps_the_most_recent_ids_and_reports_each_once() -> None:
    told: list[str] = []
    feed = CancellationFeed("unused:9092", "runs.cancellations", on_cancel=told.append, capacity=2)
    for run_id in ("a", "b", "a", "c"):
        feed.add(run_id)
    assert told == ["a", "b", "c"]
    assert "a" not in feed and "b" in feed and "c" in feed and len(feed) == 2


def test_a_failing_cancel_callback_does_not_stop_the_feed() -> None:
    def explode(run_id: str) -> None:
        raise RuntimeError(run_id)

    feed = CancellationFeed("unused:9092", "runs.cancellations", on_cancel=explode)
    feed.add("x")
    assert "x" in feed


def test_withdraw_where_takes_only_the_matching_queued_runs() -> None:
    core: LaneCore[None] = LaneCore(cap=1, partitions=1)
    core.assign([0])
    for run_id in ("r1", "r2", "r3"):
        core.offer(Ticket(run_id=run_id, tenant="t", partition=0, size=10))
    started = core.next()
    assert started is not None and started.run_id == "r1"
    withdrawn = core.withdraw(None, lambda t: t.run_id in {"r1", "r3"})
    assert [t.run_id for t in withdrawn] == ["r3"]  # r1 runs: not the queue's to give up
    assert core.queued == 1 and core.knows("r2") and not core.knows("r3")


def test_a_run_ids_result_is_read_from_the_partition_the_producer_puts_it_on() -> None:
    tps = [TopicPartition("runs.results", p) for p in (3, 0, 5, 1, 4, 2)]
    for run_id in (f"run-{i}" for i in range(50)):
        key = run_id.encode()
        expected = DefaultPartitioner()(key, list(range(6)), list(range(6)))
        assert _partitions_of([key], tps) == [TopicPartition("runs.results", expected)]
