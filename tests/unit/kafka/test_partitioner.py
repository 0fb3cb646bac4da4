"""Ferry's partitioner puts every key where Kafka's default partitioner (aiokafka's, the Java
client's) puts it: a run's records must land where any other client would look for them."""

from __future__ import annotations

import os
import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2

from app.kafka import KeyPartitioner, key_partition
from app.kafka.partitioner import murmur2

KEYS = [
    b"",
    *(os.urandom(n) for n in range(1, 70)),  # every tail length, bytes above 0x7f included
    *(str(uuid.uuid4()).encode() for _ in range(500)),
    "tenant-é/ключ".encode(),
]


def test_every_key_hashes_as_the_java_client_does() -> None:
    assert [murmur2(key) for key in KEYS] == [reference_murmur2(key) for key in KEYS]


def test_a_key_lands_on_the_default_partitioners_partition_first_time_and_remembered() -> None:
    partitioner = KeyPartitioner(remember=64)
    for partitions in (1, 3, 12, 7):
        every = list(range(partitions))
        expected = [DefaultPartitioner()(key, every, every) for key in KEYS]
        assert [partitioner(key, every, every) for key in KEYS] == expected
        assert [partitioner(key, every, every) for key in KEYS] == expected  # the remembered ones too
        assert [every[key_partition(key, partitions)] for key in KEYS] == expected


def test_it_remembers_only_the_last_keys_it_saw() -> None:
    partitioner = KeyPartitioner(remember=10)
    for key in KEYS:
        partitioner(key, [0, 1, 2], [0, 1, 2])
    assert list(partitioner._hashes) == KEYS[-10:]


def test_a_record_without_a_key_goes_to_a_partition_with_a_leader() -> None:
    partitioner = KeyPartitioner()
    assert {partitioner(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
    assert {partitioner(None, [0, 1], []) for _ in range(50)} == {0, 1}
