"""The floor to compare with: a plain aiokafka consume-and-decode loop over the input topics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer

from streams.connections.kafka import kafka_options
from streams.settings import Settings


async def consume_and_decode(
    settings: Settings,
    topics: set[str],
    expected: int,
    say: Callable[[str], None],
    limit_s: float = 300.0,
) -> tuple[int, float]:
    """Read ``expected`` messages from the start of ``topics``; (messages, seconds)."""
    consumer = AIOKafkaConsumer(
        *sorted(topics),
        **kafka_options(settings).client,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    started = time.monotonic()
    await consumer.start()
    try:
        seen = 0
        deadline = started + limit_s
        next_say = started + 2.0
        while seen < expected:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(
                    f"bare consumer read {seen:,} of {expected:,} messages in {limit_s:.0f} s"
                )
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for messages in batches.values():
                for message in messages:
                    # some of the floor's messages are malformed on purpose
                    with contextlib.suppress(orjson.JSONDecodeError, TypeError):
                        orjson.loads(message.value)
                    seen += 1
            if now >= next_say:
                next_say = now + 2.0
                say(f"  bare consumer: {seen:,}/{expected:,}")
        return seen, time.monotonic() - started
    finally:
        await consumer.stop()
