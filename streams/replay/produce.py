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

from streams.replay.transform import Output, Skip
from streams.settings import Settings
from streams.topics import ensure_topics

PROGRESS_EVERY_S = 2.0


@dataclass
class Summary:
    sent: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, label)
    skipped: Counter[str] = field(default_factory=Counter)  # "label: reason"
    example: dict[str, str] = field(default_factory=dict)  # reason -> first place seen

    def add(self, item: Output | Skip) -> None:
        if isinstance(item, Output):
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

    def __init__(self, total_rows: int) -> None:
        self.total_rows = total_rows
        self.started = self.last = time.monotonic()

    def show(self, rows: int, records: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        rate = records / max(now - self.started, 1e-9)
        share = 100.0 * rows / self.total_rows if self.total_rows else 100.0
        print(f"replay: {rows}/{self.total_rows} rows ({share:.0f}%), {records} records sent, "
              f"{rate:.0f}/s", file=sys.stderr, flush=True)  # fmt: skip


async def send_all(
    settings: Settings,
    items: Iterable[tuple[int, Output | Skip]],
    total_rows: int,
    rate: float | None,
    summary: Summary,
) -> None:
    """Produce every Output (acks=all), at most ``rate`` per second; fill ``summary``."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True,
        linger_ms=20,
    )  # fmt: skip
    await producer.start()
    progress = Progress(total_rows)
    sent = rows = 0
    try:
        for rows, item in items:
            summary.add(item)
            if isinstance(item, Skip):
                continue
            await producer.send(
                settings.topic(item.topic), orjson.dumps(item.value), key=item.key.encode()
            )
            sent += 1
            if rate:
                delay = progress.started + sent / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            progress.show(rows, sent)
        await producer.flush()
    finally:
        await producer.stop()
    progress.show(progress.total_rows, sent, final=True)
