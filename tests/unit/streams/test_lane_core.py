from __future__ import annotations

import pytest

from app.streams.lane_core import Admission, LaneCore, Ticket
from app.streams.shares import member_share, partition_share


def _core(**kw) -> LaneCore[None]:
    core: LaneCore[None] = LaneCore(**{"cap": 4, "partitions": 4, **kw})
    core.assign(range(kw.get("partitions", 4)))
    return core


def _start_all(core: LaneCore[None]) -> list[Ticket[None]]:
    started = []
    while (ticket := core.next()) is not None:
        started.append(ticket)
    return started


@pytest.mark.parametrize(("cap", "partitions"), [(1, 1), (5, 2), (7, 3), (12, 12), (10, 4)])
def test_partition_shares_add_up_to_the_cap_and_differ_by_at_most_one(cap: int, partitions: int) -> None:
    shares = [partition_share(cap, partitions, p) for p in range(partitions)]
    assert sum(shares) == cap
    assert max(shares) - min(shares) <= 1 and min(shares) >= 1


def test_a_worker_runs_its_share_of_the_cap_from_the_partitions_it_holds() -> None:
    core = _core(cap=5, partitions=2)
    core.set_group(1, 2)  # the second of two members holding the agent: share 2 of 5
    core.assign({1})
    for i in range(10):
        core.offer(Ticket(run_id=f"r{i}", tenant="t", partition=i % 2))
    started = _start_all(core)
    assert len(started) == 2 and {t.partition for t in started} == {1}  # only its own partition's runs
    assert core.capacity() == 2
    core.set_group(0, 1)  # after a rebalance this worker alone holds the agent
    core.assign({0, 1})
    assert len(_start_all(core)) == 3
    assert core.running == 5  # the whole cap, never more


def test_a_worker_holding_no_partition_has_no_slot() -> None:
    core = _core(cap=5)
    core.assign(set())
    assert core.capacity() == 0


def test_a_lower_cap_starts_nothing_until_the_running_runs_are_below_it() -> None:
    core = _core(cap=4, partitions=1)
    for i in range(10):
        core.offer(Ticket(run_id=f"r{i}", tenant="t", partition=0))
    running = _start_all(core)
    assert len(running) == 4
    core.reconfigure(cap=2, on_conflict="queue")
    core.done(running[0])
    assert core.next() is None  # 3 running, share now 2
    core.done(running[1])
    assert core.next() is None  # 2 running
    core.done(running[2])
    assert core.next() is not None and core.running == 2


def test_a_raised_cap_wakes_the_lane_and_starts_more_at_once() -> None:
    core = _core(cap=2, partitions=1)
    woken: list[int] = []
    core.listen(lambda: woken.append(core.cap))
    for i in range(10):
        core.offer(Ticket(run_id=f"r{i}", tenant="t", partition=0))
    assert len(_start_all(core)) == 2
    core.reconfigure(cap=6, on_conflict="queue")
    assert woken == [6]
    assert len(_start_all(core)) == 4 and core.running == 6


@pytest.mark.parametrize(("old", "new"), [(4, 16), (16, 2), (5, 3), (1, 7)])
@pytest.mark.parametrize("holders", [1, 2, 3])
def test_old_and_new_shares_mixed_never_pass_the_larger_cap(old: int, new: int, holders: int) -> None:
    """Mid-change some members use the old cap and some the new: whatever the mix, the sum
    stays within the larger cap (a member's share only grows with the cap)."""
    for mix in range(2**holders):
        total = sum(member_share(new if mix >> i & 1 else old, holders, i) for i in range(holders))
        assert total <= max(old, new)
    assert sum(member_share(new, holders, i) for i in range(holders)) == new  # settled: exactly the new cap


def test_a_finished_run_frees_its_partition_slot() -> None:
    core = _core(cap=1, partitions=1)
    for i in range(3):
        core.offer(Ticket(run_id=f"r{i}", tenant="t", partition=0))
    (first,) = _start_all(core)
    assert core.next() is None
    core.done(first)
    assert core.next() is not None


def test_runs_with_one_key_never_overlap_and_keep_their_order() -> None:
    core = _core(cap=8, partitions=1)
    for i in range(4):
        core.offer(Ticket(run_id=f"k{i}", tenant="t", partition=0, key="customer-1"))
    core.offer(Ticket(run_id="other", tenant="t", partition=0, key="customer-2"))
    assert [t.run_id for t in _start_all(core)] == ["k0", "other"]
    order = ["k0"]
    for _ in range(3):
        (running,) = [t for t in core.running_tickets() if t.key == "customer-1"]
        core.done(running)
        (started,) = _start_all(core)
        order.append(started.run_id)
    assert order == ["k0", "k1", "k2", "k3"]


def test_drop_refuses_a_run_whose_key_is_held() -> None:
    core = _core(on_conflict="drop")
    assert core.offer(Ticket(run_id="a", tenant="t", partition=0, key="doc-1")) == Admission.QUEUED
    assert core.offer(Ticket(run_id="b", tenant="t", partition=1, key="doc-1")) == Admission.DROPPED
    assert core.offer(Ticket(run_id="c", tenant="t", partition=2, key="doc-2")) == Admission.QUEUED
    (a, _c) = sorted(_start_all(core), key=lambda t: t.run_id)
    core.done(a)
    assert core.offer(Ticket(run_id="d", tenant="t", partition=0, key="doc-1")) == Admission.QUEUED


def test_a_run_id_already_queued_or_running_is_a_duplicate() -> None:
    core = _core()
    assert core.offer(Ticket(run_id="a", tenant="t", partition=0)) == Admission.QUEUED
    assert core.offer(Ticket(run_id="a", tenant="t", partition=0)) == Admission.DUPLICATE
    _start_all(core)
    assert core.offer(Ticket(run_id="a", tenant="t", partition=0)) == Admission.DUPLICATE


def test_the_read_ahead_window_bounds_count_and_bytes() -> None:
    core = _core(window=3, window_bytes=10_000)
    for i in range(3):
        assert core.has_room()
        core.offer(Ticket(run_id=f"r{i}", tenant="t", partition=0))
    assert not core.has_room()
    big = _core(window=100, window_bytes=2048)
    big.offer(Ticket(run_id="x", tenant="t", partition=0, size=4096))  # one oversized run is admitted alone
    assert not big.has_room()


def test_withdraw_releases_queued_runs_of_revoked_partitions() -> None:
    core = _core(cap=1, partitions=2, on_conflict="drop")
    core.offer(Ticket(run_id="a", tenant="t", partition=0, key="k"))
    core.offer(Ticket(run_id="b", tenant="t", partition=1))
    removed = core.withdraw({0})
    assert [t.run_id for t in removed] == ["a"]
    assert core.offer(Ticket(run_id="c", tenant="t", partition=1, key="k")) == Admission.QUEUED  # key freed


def _ids(tickets: list[Ticket[None]]) -> list[str]:
    return [t.run_id for t in tickets]


def test_coalesce_keeps_one_waiting_run_per_key_the_newest() -> None:
    core = _core(on_conflict="coalesce")
    first, second, third = (Ticket(run_id=r, tenant="t", partition=0, key="doc-1") for r in ("a", "b", "c"))
    assert core.offer(first) == Admission.QUEUED and first.replaced == []
    assert _ids(_start_all(core)) == ["a"]  # a runs: b then c arrive while it does
    assert core.offer(second) == Admission.QUEUED and second.replaced == []  # nothing waiting yet
    assert core.offer(third) == Admission.QUEUED
    assert _ids(third.replaced) == ["b"]  # b gave way: the caller ends it cancelled
    assert core.queued == 1 and not core.knows("b")
    assert _ids(core.running_tickets()) == ["a"]  # the running run is never touched
    assert core.next() is None  # c waits for a
    core.done(first)
    assert _ids(_start_all(core)) == ["c"]


def test_coalesce_leaves_other_keys_and_keyless_runs_alone() -> None:
    core = _core(cap=1, partitions=1, on_conflict="coalesce")
    offered = [
        Ticket(run_id="a", tenant="t", partition=0, key="doc-1"),
        Ticket(run_id="b", tenant="t", partition=0, key="doc-2"),
        Ticket(run_id="n1", tenant="t", partition=0),
        Ticket(run_id="n2", tenant="t", partition=0),
        Ticket(run_id="c", tenant="t", partition=0, key="doc-2"),  # replaces b, waiting for the slot
    ]
    for ticket in offered:
        assert core.offer(ticket) == Admission.QUEUED
    assert [_ids(t.replaced) for t in offered] == [[], [], [], [], ["b"]]
    order = []
    while (ticket := core.next()) is not None:
        order.append(ticket.run_id)
        core.done(ticket)
    assert order == ["a", "n1", "n2", "c"]  # arrival order of the runs that run


def test_coalesce_replaces_a_run_waiting_for_a_slot_and_frees_its_room() -> None:
    core = _core(cap=1, partitions=1, on_conflict="coalesce", window=10, window_bytes=50)
    core.offer(Ticket(run_id="busy", tenant="t", partition=0))
    _start_all(core)
    core.offer(Ticket(run_id="a", tenant="t", partition=0, key="doc-1", size=100))
    assert not core.has_room()
    newer = Ticket(run_id="b", tenant="t", partition=0, key="doc-1", size=10)
    core.offer(newer)
    assert _ids(newer.replaced) == ["a"] and core.queued == 1 and core.running == 1
    assert core.has_room()  # a's bytes left with it


def test_a_switch_from_queue_to_coalesce_replaces_every_waiting_run_of_the_key_at_its_next_run() -> None:
    core = _core(on_conflict="queue")
    for run_id in ("a", "b", "c"):
        core.offer(Ticket(run_id=run_id, tenant="t", partition=0, key="doc-1"))
    core.offer(Ticket(run_id="x", tenant="t", partition=0, key="doc-2"))
    (running, _x) = sorted(_start_all(core), key=lambda t: t.run_id)
    core.reconfigure(cap=4, on_conflict="coalesce")
    newest = Ticket(run_id="d", tenant="t", partition=0, key="doc-1")
    assert core.offer(newest) == Admission.QUEUED
    assert _ids(newest.replaced) == ["b", "c"]
    core.done(running)
    assert _ids(_start_all(core)) == ["d"]
    core.reconfigure(cap=4, on_conflict="queue")  # and back: runs of a key queue up again
    later = Ticket(run_id="e", tenant="t", partition=0, key="doc-1")
    core.offer(later)
    assert later.replaced == [] and core.queued == 1


def test_coalesce_never_replaces_a_duplicate_offer() -> None:
    core = _core(on_conflict="coalesce")
    core.offer(Ticket(run_id="a", tenant="t", partition=0, key="doc-1"))
    _start_all(core)
    core.offer(Ticket(run_id="b", tenant="t", partition=0, key="doc-1"))
    again = Ticket(run_id="b", tenant="t", partition=0, key="doc-1")  # a redelivery of the waiting run
    assert core.offer(again) == Admission.DUPLICATE and again.replaced == []
    assert core.queued == 1
