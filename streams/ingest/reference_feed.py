"""Keeps a worker's ReferenceCache filled from the compacted ``ref.*`` topics.

Every worker reads every partition of every ``ref.*`` topic (no consumer group): reference
data is small and each worker joins events of any key against it. ``ready`` is set once the
records present at start-up are loaded, so the first events are joined like the later ones.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer

from streams.connections.kafka import kafka_options
from streams.ingest.reference_cache import KINDS, ReferenceCache
from streams.settings import Settings

log = logging.getLogger(__name__)


async def follow_reference(settings: Settings, cache: ReferenceCache, ready: asyncio.Event) -> None:
    """Load then follow ``ref.*`` into ``cache`` until cancelled."""
    topics = {settings.topic(f"ref.{kind}"): kind for kind in KINDS}
    # No group: aiokafka then assigns every partition of the subscribed topics to this worker.
    consumer = AIOKafkaConsumer(
        *topics,
        **kafka_options(settings).client,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while not consumer.assignment():  # noqa: ASYNC110 - aiokafka offers no event for it
            await asyncio.sleep(0.05)
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        behind = {tp for tp, end in ends.items() if end > 0}
        log.info("reference data: %d partitions, %d with records to load", len(ends), len(behind))
        if not behind:
            ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, messages in batches.items():
                for message in messages:
                    if message.key is None:
                        continue
                    cache.apply(topics[tp.topic], message.key.decode(), message.value)
            if behind:
                behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
                if not behind:
                    log.info(
                        "reference data loaded: %d reps, %d products, %d accounts, %d targets",
                        len(cache.reps), len(cache.products), len(cache.accounts),
                        len(cache.targets),
                    )  # fmt: skip
                    ready.set()
    finally:
        await consumer.stop()
