"""How `max_concurrent_runs` stays a hard cap across every worker without a coordinator.

Kafka hands each partition to exactly one member of a consumer group, and the group's
assignment is computed once, by one member, for all: so the assignment is the lease.
`CoPartitionedAssignor` tells every member, beside its partitions, how many members
hold partitions of each agent (`holders`) and its own place among them (`index`). A
worker then runs at most `member_share(cap, holders, index)` runs of the agent at once,
whichever of its partitions they come from: floor(cap / holders), plus one for the first
cap mod holders members. The shares add up to the cap exactly, whatever the number of
workers or partitions.

The cap is not tied to the partition count: a new deployment may raise or lower it and
every worker applies its new share between runs, with no topic recreated. During the
change some workers use the old cap and some the new one; the sum never passes the
larger of the two, because a member's share only grows with the cap (raising the cap by
one raises exactly one member's share by one), and a worker whose share dropped starts
nothing until its running runs are below it. When a cap is lowered below the number of
holders (a member's share would be 0), that member asks the group to rebalance: members
announce their caps in their subscription, and the assignor gives the agent's
partitions to at most `cap` members. On a rebalance a worker finishes (or cancels) its
runs before it gives partitions up, so no two members ever hold the same share at once.
"""

from __future__ import annotations


def member_share(cap: int, holders: int, index: int) -> int:
    """Runs the member at `index` of `holders` members may have executing at once."""
    if holders < 1 or not 0 <= index < holders:
        raise ValueError(f"member {index} out of range 0..{holders - 1}")
    base, extra = divmod(cap, holders)
    return base + (1 if index < extra else 0)


def partition_share(cap: int, partitions: int, index: int) -> int:
    """The same split over partitions (kept for tools that reason per partition)."""
    return member_share(cap, partitions, index)
