"""Kafka's default partitioner for keyed records, at a fraction of aiokafka's CPU.

A record's partition is the Java client's murmur2 hash of its key, which every client
must compute alike so that one key lands on one partition whoever writes it. aiokafka
computes it in pure Python byte by byte (~7 µs for a 36-byte run id here), and a worker
hashes each run id five or six times (the result, every span, the checkpoints): 2-3 % of
a one-call run's CPU (bench/RESULTS.md, "Worker CPU at 200 ms under 2.0 ms"). `murmur2` reads
the key four bytes at a time (~2.7 µs, the same values: tests/unit/kafka), and
`KeyPartitioner` remembers the hashes of the keys it saw last, so a run's later records
cost a dictionary lookup.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from aiokafka.partitioner import DefaultPartitioner

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I").iter_unpack


def murmur2(data: bytes) -> int:
    """The Java client's `Utils.murmur2` of `data`, as an unsigned 32-bit value."""
    length = len(data)
    h = _SEED ^ length
    body = length & ~3
    for (k,) in _WORDS(data[:body]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra:
        if extra == 3:
            h ^= data[body + 2] << 16
        if extra >= 2:
            h ^= data[body + 1] << 8
        h ^= data[body]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition (of `partitions`) Kafka's default partitioner gives `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KeyPartitioner:
    """A producer's `partitioner`: aiokafka's default one, with the hashes of the last
    `remember` keys kept (a producer's own, never shared between producers)."""

    def __init__(self, remember: int = 4096) -> None:
        self._remember = remember
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:  # no key: aiokafka's own choice (a partition that has a leader)
            return DefaultPartitioner()(None, all_partitions, available)  # type: ignore[no-any-return]
        hashed = self._hashes.get(key)
        if hashed is None:
            hashed = murmur2(key) & 0x7FFFFFFF
            if len(self._hashes) >= self._remember:
                del self._hashes[next(iter(self._hashes))]  # the oldest
            self._hashes[key] = hashed
        return all_partitions[hashed % len(all_partitions)]
