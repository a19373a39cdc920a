"""``salespulse simulate``: a simple, deterministic stream of orders (first slice).

Every event is derived from the seed, so two runs with the same seed produce the same
events (event ids included); event times are the wall clock at which each is sent.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from aiokafka import AIOKafkaProducer

from streams.settings import Settings
from streams.topics import ensure_topics

_NAMESPACE = uuid.UUID("6f1b1c52-3f0e-4c4a-9a57-5b0d7f2b9e01")


def order_events(reps: int, seed: int, currency: str) -> Iterator[tuple[bytes, dict[str, object]]]:
    """Endless (key, order.placed) pairs for ``reps`` reps, drawn from ``seed``."""
    rng = random.Random(seed)
    rep_ids = [f"rep-{i:03d}" for i in range(1, reps + 1)]
    accounts = [f"acct-{i:04d}" for i in range(1, reps * 25 + 1)]
    for n in range(1_000_000_000):
        account = rng.choice(accounts)
        amount = Decimal(rng.randint(5_000, 2_500_000)) / 100
        event = {
            "event_id": str(uuid.uuid5(_NAMESPACE, f"{seed}:{n}")),
            "type": "order.placed",
            "occurred_at": datetime.now(UTC).isoformat(),
            "source": "simulator",
            "schema_version": 1,
            "order_id": f"ord-{seed}-{n}",
            "account_id": account,
            "rep_id": rng.choice(rep_ids),
            "amount": str(amount),
            "currency": currency,
        }
        yield account.encode(), event


async def simulate(
    settings: Settings,
    *,
    reps: int,
    rate: float,
    seed: int,
    count: int | None = None,
    progress_every: float = 5.0,
) -> int:
    """Send orders at ``rate`` per second until ``count`` are sent (or forever)."""
    await ensure_topics(settings)
    topic = settings.topic("sales.orders")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    sent = 0
    started = last_report = time.monotonic()
    try:
        for key, event in order_events(reps, seed, settings.currency):
            if count is not None and sent >= count:
                break
            await producer.send(topic, orjson.dumps(event), key=key)
            sent += 1
            due = started + sent / rate
            if (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            if time.monotonic() - last_report >= progress_every:
                last_report = time.monotonic()
                per_second = sent / (last_report - started)
                print(f"simulate: {sent} orders sent to {topic} ({per_second:.1f}/s)", flush=True)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
