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
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from faust.exceptions import ProducerSendError


async def send_records(
    app: Any, topic: str, records: Sequence[tuple[bytes, bytes]]
) -> list[asyncio.Future[Any]]:
    """Queue ``records`` (key, value) on ``topic`` through ``app``'s producer; the futures of
    their batches. ``ProducerSendError`` if the producer refuses them at once."""
    if not records:
        return []
    producer = app.producer
    aio = producer._ensure_producer()  # faust's aiokafka producer (NotReady when stopping)
    partitioner = producer.partitioner or DefaultPartitioner()
    try:
        every = sorted(await aio.partitions_for(topic))
        batches: dict[int, Any] = {}
        futures: list[asyncio.Future[Any]] = []
        for key, value in records:
            partition = partitioner(key, every, every)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = aio.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                futures.append(await aio.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = aio.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise MessageSizeTooLargeError(
                        f"a record of {len(key) + len(value)} bytes for {topic} does not fit "
                        "in an empty batch (the producer's max_batch_size)"
                    )
        for partition, batch in batches.items():
            futures.append(await aio.send_batch(batch, topic, partition=partition))
    except KafkaError as exc:
        raise ProducerSendError(f"Error while sending: {exc!r}") from exc
    return futures
