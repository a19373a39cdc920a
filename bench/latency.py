"""Produce -> Redis latency: ``order.placed`` events at a steady rate, each watched in Redis.

Event ``i`` names rep ``bench-lat-<i>`` (not in the reference data: counted under its raw id)
and happens now; it is visible when the field ``bench-lat-<i>`` appears in the hash
``<prefix>kpi:revenue:day:<local midnight, Unix s>:rep``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson

from bench.events import producer
from streams.connections.redis import redis_client
from streams.settings import Settings

POLL_S = 0.005
POLL_FIELDS = 1000  # oldest fields asked per poll: a backlog must not make polling the load


@dataclass
class Latencies:
    sent: int
    seen_ms: list[float]  # one per event that showed up, in send order of appearance
    missing: int

    def percentile(self, q: float) -> float | None:
        if not self.seen_ms:
            return None
        ordered = sorted(self.seen_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def day_key(settings: Settings, at: datetime) -> str:
    midnight = datetime.combine(at.date(), datetime.min.time(), settings.zone)
    return f"{settings.redis_prefix}kpi:revenue:day:{int(midnight.timestamp())}:rep"


def order_event(i: int, at: datetime, rep: str | None = None) -> tuple[bytes, bytes]:
    account = f"bench-acct-{i % 16}"
    payload = {
        "event_id": str(uuid.uuid4()),
        "type": "order.placed",
        "occurred_at": at.isoformat(timespec="milliseconds"),
        "source": "bench",
        "schema_version": 1,
        "order_id": f"bench-order-{i}",
        "account_id": account,
        "rep_id": rep or f"bench-lat-{i}",
        "amount": "100.00",
        "currency": "EUR",
    }
    return account.encode(), orjson.dumps(payload)


async def probe(settings: Settings, check_alive: Callable[[], None], limit_s: float) -> float:
    """Send one order and wait until Redis shows it: the pipeline has caught up. Seconds."""
    client = redis_client(settings)
    kafka = producer(settings)
    await kafka.start()
    try:
        now = datetime.now(settings.zone)
        key, value = order_event(0, now, rep="bench-probe")
        started = time.monotonic()
        await (await kafka.send(settings.topic("sales.orders"), value, key=key))
        while not await client.hexists(day_key(settings, now), "bench-probe"):
            check_alive()
            if time.monotonic() - started > limit_s:
                raise TimeoutError(f"the probe order did not reach Redis in {limit_s:.0f} s")
            await asyncio.sleep(0.02)
        return time.monotonic() - started
    finally:
        await kafka.stop()
        await client.aclose()


async def measure(
    settings: Settings,
    rate: float,
    seconds: float,
    say: Callable[[str], None],
    check_alive: Callable[[], None],
    drain_timeout: float = 60.0,
) -> Latencies:
    total = max(1, round(rate * seconds))
    topic = settings.topic("sales.orders")
    waiting: dict[str, dict[str, float]] = {}  # hash key -> field -> send time (monotonic)
    seen_ms: list[float] = []
    done_sending = asyncio.Event()
    client = redis_client(settings)
    kafka = producer(settings)
    await kafka.start()

    async def send_all() -> None:
        started = time.monotonic()
        next_say = started + 5.0
        for i in range(total):
            due = started + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = datetime.now(settings.zone)
            key, value = order_event(i, now)
            waiting.setdefault(day_key(settings, now), {})[f"bench-lat-{i}"] = time.monotonic()
            await kafka.send(topic, value, key=key)  # delivery not awaited: keep the pace
            if time.monotonic() >= next_say:
                next_say = time.monotonic() + 5.0
                check_alive()
                say(f"  latency: sent {i + 1:,}/{total:,}, seen {len(seen_ms):,}")
        await kafka.flush()
        done_sending.set()

    async def watch() -> None:
        drain_deadline: float | None = None
        while True:
            pending = [(k, list(fields)[:POLL_FIELDS]) for k, fields in waiting.items() if fields]
            if pending:
                pipe = client.pipeline(transaction=False)
                for key, fields in pending:
                    pipe.hmget(key, fields)
                replies = await pipe.execute()
                now = time.monotonic()
                for (key, fields), values in zip(pending, replies, strict=True):
                    for name, value in zip(fields, values, strict=True):
                        if value is not None:
                            seen_ms.append((now - waiting[key].pop(name)) * 1000)
            elif done_sending.is_set():
                return
            if done_sending.is_set():
                drain_deadline = drain_deadline or time.monotonic() + drain_timeout
                if time.monotonic() > drain_deadline:
                    return
            await asyncio.sleep(POLL_S)

    try:
        watcher = asyncio.create_task(watch())
        try:
            await send_all()
        except BaseException:
            watcher.cancel()
            raise
        await watcher
    finally:
        await kafka.stop()
        await client.aclose()
    missing = sum(len(fields) for fields in waiting.values())
    return Latencies(sent=total, seen_ms=seen_ms, missing=missing)
