from __future__ import annotations

from collections import Counter

from app.streams.fair_queue import FairQueue


def _drain(queue: FairQueue[str], count: int, runnable=lambda _: True) -> list[str]:
    picked = []
    for _ in range(count):
        item = queue.pick(runnable)
        if item is None:
            break
        picked.append(item)
    return picked


def test_two_backlogged_tenants_alternate() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(5):
        queue.push("a", f"a{i}")
        queue.push("b", f"b{i}")
    assert [item[0] for item in _drain(queue, 10)] == list("abababababa"[:10])


def test_a_late_small_tenant_is_served_before_a_deep_backlog() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(1000):
        queue.push("big", f"big{i}")
    _drain(queue, 100)  # the big tenant has been served a lot already
    for i in range(10):
        queue.push("small", f"small{i}")
    first_twenty = _drain(queue, 20)
    # The newcomer starts level with the big tenant (no banked credit) and gets every other turn.
    assert Counter(item.startswith("small") for item in first_twenty) == {True: 10, False: 10}


def test_costs_weigh_service() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(6):
        queue.push("heavy", f"h{i}", cost=3.0)
    for i in range(6):
        queue.push("light", f"l{i}", cost=1.0)
    picked = _drain(queue, 8)
    assert sum(1 for p in picked if p.startswith("l")) == 6  # three light runs per heavy one


def test_a_blocked_tenant_keeps_its_claim_and_wins_the_slot_when_it_frees() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(20):
        queue.push("big", f"big{i}")
    for i in range(3):
        queue.push("small", f"small{i}")
    blocked = {"small0", "small1", "small2"}
    # While the small tenant's items are blocked (busy partition) the big one runs alone...
    assert all(p.startswith("big") for p in _drain(queue, 5, lambda item: item not in blocked))
    # ...and as soon as they can start, the small tenant goes first, all three in a row.
    assert _drain(queue, 3) == ["small0", "small1", "small2"]


def test_nothing_runnable_gives_none_and_loses_nothing() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "x")
    assert queue.pick(lambda _: False) is None
    assert len(queue) == 1 and queue.pick() == "x" and len(queue) == 0


def test_an_idle_tenant_banks_no_credit() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "a0")
    assert queue.pick() == "a0"  # a leaves
    for i in range(10):
        queue.push("b", f"b{i}")
    _drain(queue, 6)
    for i in range(5):
        queue.push("a", f"a{i}")
    # `a` comes back level with `b`, not with six turns of credit.
    assert [p[0] for p in _drain(queue, 4)] in (list("abab"), list("baba"))


def test_remove_where_takes_items_out() -> None:
    queue: FairQueue[int] = FairQueue()
    for i in range(6):
        queue.push("t", i)
    assert queue.remove_where(lambda i: i % 2 == 0) == [0, 2, 4]
    assert _drain(queue, 10) == [1, 3, 5]
