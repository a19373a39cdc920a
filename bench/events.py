"""The backlog: the simulator's records (reference data first), sent to Kafka as fast as it goes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.connections.kafka import kafka_options
from streams.settings import Settings
from streams.simulator.produce import Options, plan
from streams.simulator.timeline import REFERENCE
from streams.topics import ensure_topics

BATCH = 2000  # deliveries awaited in batches of this many


@dataclass
class Backlog:
    """What was sent: counts by kind, and the topics the events went to."""

    events: int = 0  # event messages (valid, invalid and duplicates)
    invalid: int = 0
    duplicates: int = 0
    reference: int = 0
    event_topics: set[str] = field(default_factory=set)  # full topic names
    seconds: float = 0.0

    @property
    def valid(self) -> int:
        return self.events - self.invalid - self.duplicates

    @property
    def expected_outcomes(self) -> int:
        """Messages the worker counts as applied or dead-lettered (duplicates are neither)."""
        return self.events - self.duplicates


def producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **kafka_options(settings).client,
        acks="all",
        linger_ms=5,
        max_request_size=max(1_048_576, settings.max_event_bytes + 65_536),
    )


async def produce_backlog(settings: Settings, count: int, say: Callable[[str], None]) -> Backlog:
    await ensure_topics(settings)
    _, records = plan(
        settings, Options(rate=50, clock="always-open", seed=7), datetime.now(settings.zone)
    )
    sent = Backlog()
    kafka = producer(settings)
    await kafka.start()
    try:
        started = time.monotonic()
        pending: list[Any] = []
        next_say = started + 2.0
        for record in records:
            if record.kind == REFERENCE:
                sent.reference += 1
            else:
                if sent.events >= count:
                    break
                sent.events += 1
                sent.invalid += record.invalid is not None
                sent.duplicates += record.duplicate
                sent.event_topics.add(settings.topic(record.topic))
            topic = settings.topic(record.topic)
            pending.append(await kafka.send(topic, record.value, key=record.key))
            if len(pending) >= BATCH:
                for future in pending:
                    await future
                pending = []
                if time.monotonic() >= next_say:
                    next_say = time.monotonic() + 2.0
                    say(f"  produced {sent.events:,}/{count:,} events")
        await kafka.flush()
        for future in pending:
            await future
        sent.seconds = time.monotonic() - started
    finally:
        await kafka.stop()
    return sent
