"""A flush's ``kpi.updates`` records as a few aiokafka batches, not one send per record
(Faust glue).

``AIOKafkaProducer.send`` costs about 20 µs per record before the record is in a batch: it
waits on the topic's metadata, copies the partition set, picks the partition, makes a future.
The publisher sends hundreds of thousands of records in a replay (the CRM export: 0.97 M),
and these sends were a fifth of its time in py-spy (2026-12-04). Here each record is hashed
to its partition once, with the producer's own partitioner (the partition ``send`` would
pick, so a key stays on its partition), appended to that partition's batch
(``create_batch``), and each full batch goes out with ``send_batch``: both public aiokafka
API. What comes back is one future per batch, set when the broker has the batch, failed
when it does not within the request timeout: the flush confirms them before it acks
(``streams.engine.delivery``). Records of one partition keep their order.

The partition of a key is Kafka's (murmur2 of the key, as the Java client and aiokafka's
``DefaultPartitioner``), computed here over 4-byte words unpacked at once and cached for
the keys seen last: aiokafka's byte-by-byte murmur2 was 8 % of the publisher's samples in
py-spy (8.4 µs a key, 4.7 here), and a replay publishes each KPI's key about 13 times
(0.97 M records for 75,000 keys of the CRM export).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from faust.exceptions import ProducerSendError

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
KEYS_CACHED = 32_768
"""Keys whose hash is kept (least recently used out): a few MB, and a replay's keys recur."""


@lru_cache(maxsize=KEYS_CACHED)
def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` (``org.apache.kafka.common.utils.Utils.murmur2``, as
    ``aiokafka.partitioner.murmur2``), as an unsigned 32-bit int."""
    length = len(data)
    h = 0x9747B28C ^ length
    words = length >> 2
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra, tail = length & 3, words << 2
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def on_kafka_partitions(
    topic: str, records: Sequence[tuple[bytes, bytes]], partitions: Sequence[int]
) -> list[tuple[str, int, bytes, bytes]]:
    """``records`` (key, value) of ``topic``, each with the partition ``DefaultPartitioner``
    gives its key among ``partitions`` (sorted), as ``send_to_partitions`` takes them (one
    comprehension, no call per record but the cached hash)."""
    n = len(partitions)
    return [
        (topic, partitions[(murmur2(key) & 0x7FFFFFFF) % n], key, value) for key, value in records
    ]


async def send_records(
    app: Any, topic: str, records: Sequence[tuple[bytes, bytes]]
) -> list[asyncio.Future[Any]]:
    """Queue ``records`` (key, value) on ``topic`` through ``app``'s producer, each on the
    partition its key hashes to (``send_to_partitions`` does the batching); the futures of
    their batches. ``ProducerSendError`` if the producer refuses them at once."""
    if not records:
        return []
    producer = app.producer
    aio = producer._ensure_producer()  # faust's aiokafka producer (NotReady when stopping)
    custom = producer.partitioner
    kafkas = (
        custom is None or custom is DefaultPartitioner or isinstance(custom, DefaultPartitioner)
    )
    try:
        every = sorted(await aio.partitions_for(topic))
    except KafkaError as exc:
        raise ProducerSendError(f"Error while sending: {exc!r}") from exc
    if kafkas:
        placed = on_kafka_partitions(topic, records, every)
    else:
        placed = [(topic, custom(key, every, every), key, value) for key, value in records]
    return [future for _, _, future, _ in await send_to_partitions(app, placed)]


async def send_to_partitions(
    app: Any, records: Sequence[tuple[str, int, bytes, bytes | None]]
) -> list[tuple[str, int, asyncio.Future[Any], int]]:
    """Queue ``records`` (topic, partition, key, value: None is a tombstone), each on the
    partition it names, through ``app``'s producer, as one aiokafka batch per partition
    (more when one fills), in order; per batch (topic, partition, its future, its number of
    records). The future's offset is the batch's first record's, the next ones follow it.
    ``ProducerSendError`` if the producer refuses them at once."""
    if not records:
        return []
    aio = app.producer._ensure_producer()  # faust's aiokafka producer (NotReady when stopping)
    out: list[tuple[str, int, asyncio.Future[Any], int]] = []
    batches: dict[tuple[str, int], tuple[Any, int]] = {}  # (topic, partition) -> (batch, n)
    try:
        for topic, partition, key, value in records:
            batch, n = batches.get((topic, partition), (None, 0))
            if batch is None:
                batch = aio.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                if n:
                    future = await aio.send_batch(batch, topic, partition=partition)
                    out.append((topic, partition, future, n))
                batch, n = aio.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    size = len(key) + len(value or b"")
                    raise MessageSizeTooLargeError(
                        f"a record of {size} bytes for {topic} does not fit in an empty "
                        "batch (the producer's max_batch_size)"
                    )
            batches[(topic, partition)] = (batch, n + 1)
        for (topic, partition), (batch, n) in batches.items():
            future = await aio.send_batch(batch, topic, partition=partition)
            out.append((topic, partition, future, n))
    except KafkaError as exc:
        raise ProducerSendError(f"Error while sending: {exc!r}") from exc
    return out
