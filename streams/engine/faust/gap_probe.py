"""Whether a gap in a partition's offsets holds messages, asked of the broker.

A stage handed offset 9 when it expected 4 has lost messages, unless offsets 4-8 hold
none: a transactional producer's commit markers and compaction leave offsets unused. One
plain consumer (no group) per worker reads the first record at or after the expected
offset: if it is the one the stage was handed, the gap is empty and the stage goes on at
once; otherwise the partition is sought back (``streams.engine.faust.gaps``). The same reader
reads back the original bytes of an input message a stage failed to apply
(``streams.engine.failures``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

TIMEOUT_MS = 3000


class GapProbe:
    def __init__(self, kafka: dict[str, Any]) -> None:
        self.kafka = kafka  # client options (streams.connections.kafka)
        self.consumer: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(**self.kafka, group_id=None, enable_auto_commit=False)
        await consumer.start()
        self.consumer = consumer  # only once started: until then the probe cannot say (None)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None

    async def _first_at(self, topic: str, partition: int, offset: int) -> Any:
        """The first record at or after ``offset``; None when the broker could not say (not
        started, or no record within the timeout)."""
        if self.consumer is None:
            return None
        tp = TopicPartition(topic, partition)
        async with self.lock:
            try:
                self.consumer.assign([tp])
                self.consumer.seek(tp, offset)
                batch = await self.consumer.getmany(tp, timeout_ms=TIMEOUT_MS, max_records=1)
            except Exception:  # the callers then do what is always safe
                log.exception("gap probe: could not read %s/%s at %s", topic, partition, offset)
                return None
        records = batch.get(tp, [])
        return records[0] if records else None

    async def empty(self, topic: str, partition: int, expected: int, handed: int) -> bool | None:
        """Whether offsets ``expected`` to ``handed - 1`` hold no message; None when the
        broker could not say (the guard then seeks back, which is always safe)."""
        record = await self._first_at(topic, partition, expected)
        return None if record is None else bool(record.offset >= handed)

    async def value_at(self, topic: str, partition: int, offset: int) -> bytes | None:
        """The value of the message at ``offset``; None when the broker could not say, or it
        is gone (deleted by retention)."""
        record = await self._first_at(topic, partition, offset)
        return record.value if record is not None and record.offset == offset else None
