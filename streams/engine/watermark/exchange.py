"""The progress exchange: every worker's cuts of its input partitions, read by every worker.

Cuts (``streams.engine.watermark.clock.Progress``) go to the compacted ``internal.progress`` topic,
keyed ``topic/partition``, through the app's producer; each worker reads every partition of
it with a plain consumer outside the group (like the reference data) and asks the broker for
the end offsets of every input partition. Glue only: the rules are in the watermark module.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.engine.watermark.clock import Progress, Source

log = logging.getLogger(__name__)

METADATA_EVERY_S = 30.0  # partition counts of the input topics are read again this often


class ProgressExchange:
    def __init__(self, kafka: dict[str, Any], progress_topic: str, inputs: list[str]) -> None:
        self.kafka = kafka  # client options (streams.connections.kafka)
        self.progress_topic = progress_topic
        self.inputs = inputs
        self.consumer: AIOKafkaConsumer | None = None  # made in start(): aiokafka needs a loop
        self.records: dict[Source, Progress] = {}
        self.partitions: list[TopicPartition] = []
        self.metadata_at = -METADATA_EVERY_S

    @staticmethod
    def key(source: Source) -> bytes:
        return f"{source[0]}/{source[1]}".encode()

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            self.progress_topic,
            **self.kafka,
            group_id=None,  # every partition, every worker
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await self.consumer.start()

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None

    def _consumer(self) -> AIOKafkaConsumer:
        if self.consumer is None:
            raise RuntimeError("the progress exchange is not started")
        return self.consumer

    async def poll(self) -> dict[Source, Progress]:
        """Every partition's latest reported cut (other workers' included)."""
        batches = await self._consumer().getmany(timeout_ms=0, max_records=10_000)
        for messages in batches.values():
            for message in messages:
                if message.key is None or message.value is None:
                    continue
                topic, _, partition = message.key.decode().rpartition("/")
                try:
                    self.records[(topic, int(partition))] = Progress.decode(message.value)
                except (ValueError, KeyError, TypeError):
                    log.warning("progress record %r ignored: not a progress record", message.key)
        return self.records

    async def sources(self) -> list[Source]:
        """Every partition of every input topic (read from the broker's metadata)."""
        if time.monotonic() - self.metadata_at >= METADATA_EVERY_S or not self.partitions:
            # The consumer's own metadata only covers the progress topic; this reads every
            # topic's (what AIOKafkaConsumer.topics() does, keeping the partitions).
            cluster = await self._consumer()._client.fetch_all_metadata()
            partitions: list[TopicPartition] = []
            for topic in self.inputs:
                numbers = cluster.partitions_for_topic(topic) or set()
                partitions.extend(TopicPartition(topic, p) for p in sorted(numbers))
            missing = [t for t in self.inputs if not cluster.partitions_for_topic(t)]
            if missing:
                log.warning("input topics without partitions in the metadata: %s", missing)
            if partitions:
                self.partitions = partitions
                self.metadata_at = time.monotonic()
        return [(tp.topic, tp.partition) for tp in self.partitions]

    async def ends(self) -> dict[Source, int]:
        """End offsets of every input partition, asked now."""
        if not self.partitions:
            return {}
        offsets = await self._consumer().end_offsets(self.partitions)
        return {(tp.topic, tp.partition): end for tp, end in offsets.items()}
