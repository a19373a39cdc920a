"""Send the floor to Kafka: one producer, paced by the clock and capped at the rate.

Each record is sent when the wall clock reaches the wall time of its emission (``clock``),
and never faster than ``rate`` messages per second; reference records and the floor's past
(``Options.history``) go first, at once.
Ctrl-C or SIGTERM stops it cleanly: what was sent is flushed, and the summary printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.connections.kafka import kafka_options
from streams.ingest.validate import DeadLetterReason
from streams.settings import Settings
from streams.simulator.clock import Clock, parse_clock
from streams.simulator.floor import FloorConfig, floor
from streams.simulator.incidents import IncidentSpec
from streams.simulator.summary import Summary
from streams.simulator.timeline import REFERENCE, Flaws, Record
from streams.simulator.world import build_world
from streams.topics import ensure_topics

FOREIGN_CURRENCIES = ("GBP", "USD", "CHF", "SEK", "JPY", "CAD")
KAFKA_MESSAGE_LIMIT = 1_000_000  # the broker's default message.max.bytes, near enough
PENDING_LIMIT = 2000  # deliveries awaited in batches of this many


@dataclass(frozen=True)
class Options:
    reps: int = 40
    rate: float = 50.0  # messages per second at the busiest hour (and never more)
    seed: int = 7
    count: int | None = None  # stop after this many event messages
    duration: float | None = None  # stop after this many seconds
    clock: str = "real"
    incidents: tuple[IncidentSpec, ...] = ()
    reference: bool = True
    history: bool = False  # the quarter so far and a pipeline (``simulate --history``)
    progress_every: float = 5.0


def plan(
    settings: Settings, options: Options, wall_start: datetime
) -> tuple[Clock, Iterator[Record]]:
    """The clock and the records of a run starting at ``wall_start``. Pure."""
    clock = parse_clock(options.clock, zone=settings.zone, origin=wall_start)
    reasons = tuple(DeadLetterReason)
    if settings.max_event_bytes + 4096 > KAFKA_MESSAGE_LIMIT:  # too large for Kafka itself
        reasons = tuple(r for r in reasons if r is not DeadLetterReason.TOO_LARGE)
    unrated = {settings.currency, *settings.fx_rates}
    config = FloorConfig(
        hours=clock.hours(),
        peak_rate=options.rate / clock.speed,
        currency=settings.currency,
        flaws=Flaws(invalid_reasons=reasons),
        incidents=tuple(spec.resolve(clock, wall_start) for spec in options.incidents),
        reference=options.reference,
        history=options.history,
        max_bytes=settings.max_event_bytes,
        foreign_currencies=tuple(c for c in FOREIGN_CURRENCIES if c not in unrated)[:3],
    )
    world = build_world(options.seed, options.reps)
    return clock, floor(world, clock.event_time(wall_start), config, options.seed)


async def produce(
    settings: Settings, options: Options, *, say: Callable[[str], None] = print
) -> Summary:
    """Run until ``count``, ``duration``, Ctrl-C or SIGTERM; progress lines go to ``say``."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        **kafka_options(settings).client,
        acks="all",
        linger_ms=5,
        enable_idempotence=True,
        max_request_size=max(1_048_576, settings.max_event_bytes + 65_536),
    )
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = _on_signals(loop, stop.set)
    try:
        sender = _Sender(settings, options, producer, stop, say)
        sender.summary.stopped_by = await sender.run()
        await producer.flush()
        await sender.delivered()
        sender.summary.elapsed = sender.loop.time() - sender.started
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await producer.stop()
    return sender.summary


class _Sender:
    def __init__(
        self,
        settings: Settings,
        options: Options,
        producer: AIOKafkaProducer,
        stop: asyncio.Event,
        say: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.options = options
        self.producer = producer
        self.stop = stop
        self.say = say
        self.summary = Summary()
        self.pending: list[asyncio.Future[Any]] = []
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.deadline: float | None = None
        self.next_progress = self.started

    async def run(self) -> str:
        options = self.options
        wall_start = datetime.now(self.settings.zone)
        clock, records = plan(self.settings, options, wall_start)
        self.started = started = self.loop.time()
        self.deadline = started + options.duration if options.duration else None
        self.next_progress = started + options.progress_every
        bucket = _TokenBucket(options.rate, started)
        for record in records:
            if record.kind != REFERENCE and not record.backfill:
                if options.count is not None and self.summary.events >= options.count:
                    return "count"
                wall = clock.wall_time(record.emitted_at)
                due = bucket.take(started + (wall - wall_start).total_seconds())
                if not await self._wait_until(due):
                    return "signal" if self.stop.is_set() else "duration"
            await self._send(record)
            if self.stop.is_set():
                return "signal"
        return "end of the floor"  # pragma: no cover - the floor is endless but for silences

    async def delivered(self) -> None:
        """Wait for every delivery report; raise the first error."""
        pending, self.pending = self.pending, []
        await asyncio.gather(*pending)

    async def _send(self, record: Record) -> None:
        topic = self.settings.topic(record.topic)
        self.pending.append(await self.producer.send(topic, record.value, key=record.key))
        self.summary.add(record)
        if len(self.pending) >= PENDING_LIMIT:
            await self.delivered()
        self._maybe_progress()

    async def _wait_until(self, due: float) -> bool:
        """Sleep until ``due`` (monotonic); False if stopped or out of time first."""
        while True:
            now = self.loop.time()
            if (self.deadline is not None and now >= self.deadline) or self.stop.is_set():
                return False
            if due - now <= 0.002:
                return True
            limit = min(due, self.next_progress, self.deadline or due) - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=max(limit, 0.001))
            self._maybe_progress()

    def _maybe_progress(self) -> None:
        now = self.loop.time()
        if now >= self.next_progress:
            self.next_progress = now + self.options.progress_every
            self.say(self.summary.progress(now - self.started, self.options.incidents))


class _TokenBucket:
    """At most ``rate`` messages per second, in bursts of at most one second's worth."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = 1.0
        self.at = now

    def take(self, wanted: float) -> float:
        """When a message wanted at ``wanted`` may go (at or after it)."""
        at = max(wanted, self.at)
        self.tokens = min(self.capacity, self.tokens + (at - self.at) * self.rate)
        if self.tokens < 1.0:
            at += (1.0 - self.tokens) / self.rate
            self.tokens = 1.0
        self.tokens -= 1.0
        self.at = at
        return at


def _on_signals(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
) -> list[signal.Signals]:
    """Route SIGINT and SIGTERM to ``callback``, where the platform allows it."""
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, callback)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            continue
        installed.append(signum)
    return installed
