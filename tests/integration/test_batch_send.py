"""streams.engine.faust.batch_send on a real broker: records sent as batches land on the partition
``AIOKafkaProducer.send`` picks for their key, in order within a partition, every one of
them, and their futures say so."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.connections.kafka import kafka_options
from streams.engine.faust.batch_send import send_records
from streams.settings import Settings

PARTITIONS = 4


async def _topics(settings: Settings, *names: str) -> None:
    admin = AIOKafkaAdminClient(**kafka_options(settings).client)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=PARTITIONS, replication_factor=1) for name in names]
        )
    finally:
        await admin.close()


async def _read(settings: Settings, topic: str, count: int) -> dict[int, list[tuple[bytes, bytes]]]:
    consumer = AIOKafkaConsumer(
        **kafka_options(settings).client, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: dict[int, list[tuple[bytes, bytes]]] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + 60
        while sum(len(v) for v in found.values()) < count:
            assert time.monotonic() < deadline, f"{topic}: fewer than {count} records"
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                found.setdefault(tp.partition, []).extend(
                    (m.key or b"", m.value or b"") for m in batch
                )
    finally:
        await consumer.stop()
    return found


async def test_batches_land_where_send_puts_each_key_in_order(settings: Settings) -> None:
    batched, single = settings.topic("batched"), settings.topic("single")
    await _topics(settings, batched, single)
    # Several records per key (order matters), values large enough to fill many batches.
    records = [
        (f"kpi/day/{i % 997}".encode(), f"{i}:".encode() + b"x" * 300) for i in range(20_000)
    ]
    aio = AIOKafkaProducer(**kafka_options(settings).client)
    await aio.start()
    try:
        app: Any = SimpleNamespace(
            producer=SimpleNamespace(_ensure_producer=lambda: aio, partitioner=None)
        )
        futures = await send_records(app, batched, records)
        for key, value in records:
            await aio.send(single, value, key=key)
        await aio.flush()
        results = [await future for future in futures]
    finally:
        await aio.stop()
    assert 4 <= len(futures) < len(records) / 10, f"{len(futures)} batches for {len(records)}"
    assert all(result is not None for result in results)
    got, expected = (
        await _read(settings, batched, len(records)),
        await _read(settings, single, len(records)),
    )
    assert got == expected  # same partition per key, same order, nothing lost or doubled
