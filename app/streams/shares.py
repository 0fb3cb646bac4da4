"""How `max_concurrent_runs` stays a hard cap across every worker without a coordinator.

Kafka already hands each partition to exactly one member of a consumer group, so the
partition is the lease: partition i of an agent's topics gets a fixed share of the cap,
floor(cap / P) plus one for the first cap mod P partitions, and a worker runs at most
the sum of the shares of the partitions it holds. Shares add up to the cap whatever the
number of workers. Every topic that carries an agent's runs (its request topic and the
pipeline stage topics that use it) has the same P, and `CoPartitionedAssignor` gives
partition i of all of them to one worker, so one share covers all of them. On a
rebalance a worker finishes (or cancels) its runs before it gives partitions up.
"""

from __future__ import annotations


def partition_share(cap: int, partitions: int, index: int) -> int:
    """Runs partition `index` of `partitions` may have executing at once."""
    if partitions < 1 or not 0 <= index < partitions:
        raise ValueError(f"partition {index} out of range 0..{partitions - 1}")
    base, extra = divmod(cap, partitions)
    return base + (1 if index < extra else 0)
