"""Send what ``transform`` makes to Kafka: rate limit, progress, summary."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer

from streams.connections.kafka import kafka_options
from streams.replay.dump import Raw
from streams.replay.transform import Output, Skip
from streams.settings import Settings
from streams.topics import ensure_topics

PROGRESS_EVERY_S = 2.0


@dataclass
class Summary:
    sent: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, label)
    skipped: Counter[str] = field(default_factory=Counter)  # "label: reason"
    example: dict[str, str] = field(default_factory=dict)  # reason -> first place seen

    def add(self, item: Output | Raw | Skip) -> None:
        if isinstance(item, Output | Raw):
            self.sent[(item.topic, item.label)] += 1
        else:
            reason = f"{item.label}: {item.reason}"
            self.skipped[reason] += 1
            self.example.setdefault(reason, item.where)

    def render(self, title: str) -> str:
        lines = [title]
        for (topic, label), count in sorted(self.sent.items()):
            lines.append(f"  {topic:<22} {label:<22} {count:>8}")
        lines.append(f"  {'total':<45} {sum(self.sent.values()):>8}")
        if self.skipped:
            lines.append("skipped:")
            for reason, count in self.skipped.most_common():
                lines.append(f"  {count:>8}  {reason}  (first: {self.example[reason]})")
        return "\n".join(lines)


class Progress:
    """A progress line on stderr at most every PROGRESS_EVERY_S seconds."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = self.last = time.monotonic()

    def show(self, records: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        rate = records / max(now - self.started, 1e-9)
        share = 100.0 * records / self.total if self.total else 100.0
        print(f"replay: {records}/{self.total} records sent ({share:.0f}%), {rate:.0f}/s",
              file=sys.stderr, flush=True)  # fmt: skip


async def send_all(
    settings: Settings,
    items: Iterable[Output | Raw | Skip],
    rate: float | None,
    summary: Summary,
) -> None:
    """Produce every Output and Raw (acks=all), at most ``rate`` per second, in order; fill
    ``summary``."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        **kafka_options(settings).client, acks="all", enable_idempotence=True,
        linger_ms=20, max_request_size=max(1_048_576, settings.max_event_bytes + 65_536),
    )  # fmt: skip
    await producer.start()
    records = list(items)
    progress = Progress(sum(not isinstance(item, Skip) for item in records))
    sent = 0
    try:
        for item in records:
            summary.add(item)
            if isinstance(item, Skip):
                continue
            if isinstance(item, Raw):  # a dump's message: its bytes as they are
                value, key = item.value, item.key
            else:
                value, key = orjson.dumps(item.value), item.key.encode()
            await producer.send(settings.topic(item.topic), value, key=key)
            sent += 1
            if rate:
                delay = progress.started + sent / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            progress.show(sent)
        await producer.flush()
    finally:
        await producer.stop()
    progress.show(sent, final=True)
