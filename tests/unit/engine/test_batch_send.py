"""The partition of a ``kpi.updates`` key is Kafka's: the same as aiokafka's partitioner."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from streams.engine.faust.batch_send import murmur2, on_kafka_partitions


def _keys() -> list[bytes]:
    rnd = random.Random(11)
    keys = [bytes(rnd.getrandbits(8) for _ in range(n)) for n in range(0, 41)]  # every tail
    keys += [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 90))) for _ in range(2000)]
    keys += [f"revenue/month/2017-{m:02d}-01T00:00:00+01:00/rep/r{m}".encode() for m in range(13)]
    return keys


def test_murmur2_is_aiokafka_s_for_every_length_and_byte() -> None:
    mismatched = [key for key in _keys() if murmur2(key) != aiokafka_murmur2(key)]
    assert mismatched == []


def test_a_key_goes_to_the_partition_aiokafka_s_default_partitioner_picks() -> None:
    for count in (1, 3, 4, 12):
        partitions = list(range(count))
        keys = _keys()
        placed = on_kafka_partitions("kpi.updates", [(key, b"v") for key in keys], partitions)
        expected = [DefaultPartitioner()(key, partitions, partitions) for key in keys]
        assert [partition for _, partition, _, _ in placed] == expected
        assert [(topic, key) for topic, _, key, _ in placed] == [("kpi.updates", k) for k in keys]
