"""Valid messages a stage after the ingest failed to apply: dead letters, not silent losses.

An exception while the entity stage or the publisher applies a message (a bug, a value no
test foresaw) must not stop the stage, nor lose the event without a trace: the message's
writes are undone (``streams.engine.writeback.all_or_nothing``), and it goes to
``sales.deadletter`` with the reason ``stage_error``, the ``stage`` and the ``error``, in
the stage's next flush: sent before that flush's offsets are committed, dropped with the
rest of a revoked partition's unflushed work (its next owner fails on it again and sends
it). ``salespulse_stage_errors_total{stage}`` counts them once flushed, and the alert
``SalespulseStageErrors`` fires on it (docs/alerts.md).

The source is the message as the operator can send it again once the worker is fixed: for
the entity stage, the input event (topic, partition, offset and its original bytes, read
back from the broker); for the publisher, the ``internal.cells`` message it could not merge.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

STAGE_ERROR = "stage_error"
"""The dead-letter ``reason`` of a valid message a stage failed to apply."""

Headers = list[tuple[str, bytes]]
Send = Callable[[bytes, bytes, Headers], Awaitable[Any]]
"""(key, value, headers) -> sent to sales.deadletter"""


@dataclass(frozen=True)
class Origin:
    """Where a message was read: the dead letter's key and ``source_*`` headers."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def parse(cls, src: str) -> Origin:
        """``topic/partition/offset``, as the ingest writes it in every routed item (a Kafka
        topic name has no ``/``)."""
        topic, partition, offset = src.rsplit("/", 2)
        return cls(topic, int(partition), int(offset))


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def headers(stage: str, source: Origin, exc: BaseException, role: str | None = None) -> Headers:
    """The dead letter's headers: those of the ingest's (``reason``, ``detail``,
    ``source_*``), plus ``stage``, ``error`` and, in the entity stage, ``role``."""
    what = f"the {stage} failed to apply this valid message"
    if role is not None:
        what += f" (as its {role} role)"
    detail = (
        f"{what}: {error_text(exc)}. It is missing from the KPIs: fix the worker (its log has "
        f"the traceback), then send this message again to {source.topic}"
    )
    out: Headers = [
        ("reason", STAGE_ERROR.encode()),
        ("detail", detail.encode()[:2000]),
        ("source_topic", source.topic.encode()),
        ("source_partition", str(source.partition).encode()),
        ("source_offset", str(source.offset).encode()),
        ("stage", stage.encode()),
        ("error", error_text(exc).encode()),
    ]
    if role is not None:
        out.append(("role", role.encode()))
    return out


class StageFailures:
    """A stage's dead letters since its last flush, by partition (the stage's lock held)."""

    def __init__(self, stage: str, send: Send, errors: Counter[str]) -> None:
        self.stage = stage
        self.send = send
        self.errors = errors  # stage -> dead letters flushed (salespulse_stage_errors_total)
        self.pending: dict[int, list[tuple[bytes, bytes, Headers]]] = {}

    def add(
        self, partition: int, source: Origin, value: bytes, exc: BaseException,
        role: str | None = None,
    ) -> None:  # fmt: skip
        letter = (source.topic.encode(), value, headers(self.stage, source, exc, role))
        self.pending.setdefault(partition, []).append(letter)

    def revoke(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.pending.pop(partition, None)

    async def send_pending(self) -> int:
        """Send what failed since the last flush (before the flush's offsets are committed);
        how many."""
        pending, self.pending = self.pending, {}
        sent = 0
        for letters in pending.values():
            for key, value, letter_headers in letters:
                await self.send(key, value, letter_headers)
                sent += 1
        return sent

    def count(self, flushed: int) -> None:
        """``flushed`` dead letters are in Kafka (the flush's offsets are committed next)."""
        self.errors[self.stage] += flushed
