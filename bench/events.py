"""The backlog: the simulator's records (reference data first), sent to Kafka as fast as it goes.

The backlog is dated so that its last event is the moment it is produced: the last ``count``
events of a floor, which a worker catches up on (after an outage, a deploy, a new consumer
group). A backlog starting at the wall clock would run ahead of it (200,000 events of the
floor at 50 events/s span 68 minutes): the ingest dead-letters every event dated more than
``future_tolerance_s`` ahead of its clock (``future_dated``), and the bench would time the
dead-letter path instead of the pipeline (until 2026-12-07 it did: about 20 % of the 20,000
events and 90 % of the 200,000).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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


OPTIONS = Options(rate=50, clock="always-open", seed=7)


def span(settings: Settings, count: int, start: datetime) -> timedelta:
    """Event time from ``start`` to the newest of the floor's first ``count`` events."""
    _, records = plan(settings, OPTIONS, start)
    newest, events = start, 0
    for record in records:
        if record.kind == REFERENCE:
            continue
        newest = max(newest, record.event_time)
        events += 1
        if events >= count:
            break
    return newest - start


async def produce_backlog(settings: Settings, count: int, say: Callable[[str], None]) -> Backlog:
    await ensure_topics(settings)
    now = datetime.now(settings.zone)
    # The always-open floor is the same shifted in time: its span from a start now is its
    # span from a start that much earlier (checked below, after the sends).
    start = now - span(settings, count, now) - timedelta(seconds=1)
    _, records = plan(settings, OPTIONS, start)
    newest = start
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
                newest = max(newest, record.event_time)
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
    ahead = (newest - datetime.now(settings.zone)).total_seconds()
    if ahead > settings.future_tolerance_s:
        raise RuntimeError(
            f"the backlog's newest event is {ahead:.0f} s ahead of the clock: the worker would "
            f"dead-letter it (future_tolerance_s={settings.future_tolerance_s:.0f}); the "
            "simulator's floor no longer has the same span when started earlier (bench/events.py)"
        )
    return sent
