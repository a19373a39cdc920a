"""Produce -> Redis latency: ``order.placed`` events at a steady rate, watched in Redis.

The events come from a floor of ``reps`` reps (default ``REPS``, the simulator floor's size):
event ``i`` is rep ``bench-lat-<i mod reps>``'s, for 100.00 EUR, and happens now. Each rep
has one account, the Kafka key, so a rep's orders are in one partition, in the order sent.
Event ``i``, the ``k``-th order of its rep, is visible once the rep's revenue in the hash
``<prefix>kpi:revenue:day:<local midnight, Unix s>:rep`` reaches ``k`` x 100.00: what a
wallboard shows includes it (revenue only grows here).

Until 2026-12-05 every event had a rep of its own (30,000 reps in a 30 s run), so every event
opened new cells in every window and dimension of a rep: a load no sales floor makes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import orjson

from bench.events import producer
from streams.connections.redis import redis_client
from streams.settings import Settings

POLL_S = 0.005
REPS = 40  # the simulator floor's reps (streams.simulator)
AMOUNT = Decimal("100.00")


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


def rep_of(i: int, reps: int) -> str:
    return f"bench-lat-{i % reps}"


def order_event(i: int, at: datetime, rep: str, account: str) -> tuple[bytes, bytes]:
    payload = {
        "event_id": str(uuid.uuid4()),
        "type": "order.placed",
        "occurred_at": at.isoformat(timespec="milliseconds"),
        "source": "bench",
        "schema_version": 1,
        "order_id": f"bench-order-{i}",
        "account_id": account,
        "rep_id": rep,
        "amount": str(AMOUNT),
        "currency": "EUR",
    }
    return account.encode(), orjson.dumps(payload)


IDLE_ORDERS = 10  # orders sent one at a time on the idle floor (``idle``)
IDLE_GAP_S = 0.5  # between one order seen and the next sent


async def idle(
    settings: Settings, check_alive: Callable[[], None], limit_s: float,
    count: int = IDLE_ORDERS, gap_s: float = IDLE_GAP_S, rep: str = "bench-idle",
) -> list[float]:  # fmt: skip
    """Produce -> Redis on an idle floor: ``count`` orders of ``rep``, each sent once the one
    before it is in Redis, ``gap_s`` apart. Milliseconds, in send order: the least an event
    waits, with nothing queued before it (what the steady rate adds is the rest)."""
    client = redis_client(settings)
    kafka = producer(settings)
    await kafka.start()
    out: list[float] = []
    sent: dict[str, int] = {}  # day hash -> orders sent that day (a run across midnight)
    try:
        for k in range(1, count + 1):
            if k > 1:
                await asyncio.sleep(gap_s)
            now = datetime.now(settings.zone)
            day = day_key(settings, now)
            sent[day] = sent.get(day, 0) + 1
            key, value = order_event(k, now, rep=rep, account=f"bench-acct-{rep}")
            started = time.monotonic()
            await (await kafka.send(settings.topic("sales.orders"), value, key=key))
            while counted(await client.hget(day, rep)) < sent[day]:
                check_alive()
                if time.monotonic() - started > limit_s:
                    raise TimeoutError(f"order {k} of {rep} did not reach Redis in {limit_s:.0f} s")
                await asyncio.sleep(POLL_S)
            out.append((time.monotonic() - started) * 1000)
        return out
    finally:
        await kafka.stop()
        await client.aclose()


async def probe(settings: Settings, check_alive: Callable[[], None], limit_s: float) -> float:
    """Send one order and wait until Redis shows it: the pipeline has caught up. Seconds."""
    (ms,) = await idle(settings, check_alive, limit_s, count=1, rep="bench-probe")
    return ms / 1000


def counted(raw: bytes | str | None) -> int:
    """How many orders of ``AMOUNT`` a rep's published revenue holds."""
    if raw is None:
        return 0
    value = orjson.loads(raw)["value"]
    return 0 if value is None else int(Decimal(value) / AMOUNT)


class Waiting:
    """The orders sent and not seen yet: hash key -> rep -> (k, send time), oldest first."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, deque[tuple[int, float]]]] = {}
        self.sent: dict[tuple[str, str], int] = {}

    def add(self, day: str, rep: str, at: float) -> None:
        k = self.sent[(day, rep)] = self.sent.get((day, rep), 0) + 1
        self.orders.setdefault(day, {}).setdefault(rep, deque()).append((k, at))

    def to_ask(self) -> list[tuple[str, list[str]]]:
        out = []
        for day, by_rep in self.orders.items():
            if names := [rep for rep, queue in by_rep.items() if queue]:
                out.append((day, names))
        return out

    def seen(self, day: str, rep: str, raw: bytes | None, now: float) -> list[float]:
        """The latencies (ms) of the orders ``raw``, the rep's published revenue, includes."""
        queue, have, out = self.orders[day][rep], counted(raw), []
        while queue and queue[0][0] <= have:
            out.append((now - queue.popleft()[1]) * 1000)
        return out

    def missing(self) -> int:
        return sum(len(queue) for by_rep in self.orders.values() for queue in by_rep.values())


async def measure(
    settings: Settings,
    rate: float,
    seconds: float,
    say: Callable[[str], None],
    check_alive: Callable[[], None],
    drain_timeout: float = 60.0,
    reps: int = REPS,
) -> Latencies:
    total = max(1, round(rate * seconds))
    topic = settings.topic("sales.orders")
    waiting = Waiting()
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
            rep = rep_of(i, reps)
            key, value = order_event(i, now, rep=rep, account=f"bench-acct-{i % reps}")
            waiting.add(day_key(settings, now), rep, time.monotonic())
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
            pending = waiting.to_ask()
            if pending:
                pipe = client.pipeline(transaction=False)
                for day, names in pending:
                    pipe.hmget(day, names)
                replies = await pipe.execute()
                now = time.monotonic()
                for (day, names), values in zip(pending, replies, strict=True):
                    for rep, raw in zip(names, values, strict=True):
                        seen_ms.extend(waiting.seen(day, rep, raw, now))
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
    return Latencies(sent=total, seen_ms=seen_ms, missing=waiting.missing())
