"""Every offset of a partition is processed, in order: a gap is sought back (pure logic).

faust-streaming 0.15 can lose a fetched message on its way to an agent around a rebalance:
it drops what is queued when the flow is suspended, resumes the flow before it seeks the
partitions to their committed offsets, and skips what its fetcher re-reads below the last
offset it delivered (docs/engine.md, known problems). A stage that processed offset 2 and is
handed offset 4 has lost 3. So each stage asks its :class:`OffsetGuard` first:

- nothing of a partition is processed before faust has positioned it after a rebalance
  (it seeks every partition to its committed offset, or, here, to its earliest one when
  nothing is committed: ``streams.engine.faust.rebalance``); what came earlier is read again;
- the next offset expected is the one after the last processed since then, or where the
  partition was positioned; an older one is a redelivery (processed again: every stage is
  idempotent), a newer one is a gap: the stage seeks the partition back to the expected
  offset and skips messages until it comes;
- unless the broker says the gap holds no message (``streams.engine.faust.gap_probe``: a
  transactional producer's commit markers, compaction), then the stage goes on at once;
- a seek can be undone by messages faust had already fetched, so it is repeated every
  ``retry_s``, on a timer too (the message awaited may be the partition's last); once it
  has been sought ``tries`` times in vain the guard says ``STUCK``: the stage asks the broker
  again and goes past the gap only if it holds no message; otherwise it logs an error and
  seeks back again. Never past offsets that hold messages: they would be lost;
- a partition whose last messages were lost shows no gap (no later offset arrives): one
  that has held fetched messages from its expected offset on for ``SILENT_S`` with none
  handed is sought back too (``silent``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

RETRY_S = 3.0
TRIES = 3
SILENT_S = 15.0
"""A positioned partition that has held messages at or past its expected offset (its
highwater above it) for this long, fetched but none handed to the stage meanwhile, has lost
them with no later message to show the gap (faust's fetch path around a rebalance:
``streams.engine.faust.fetch_loop``; docs/engine.md, known problems). Whatever the cause, such a
partition is sought back (``silent``)."""


class Verdict(Enum):
    PROCESS = "process"  # the expected offset, or an older one (a redelivery)
    SKIP = "skip"  # not positioned yet, or past a gap already sought back: read again later
    SEEK = "seek"  # past a gap: seek back to ``OffsetGuard.expected`` and skip it
    STUCK = "stuck"  # past a gap sought back ``tries`` times in vain: ask the broker again


@dataclass
class _Seeking:
    offset: int
    at: float
    tries: int


@dataclass
class OffsetGuard:
    retry_s: float = RETRY_S
    tries: int = TRIES
    # partition -> (positioning it belongs to, last offset processed since)
    last: dict[Hashable, tuple[int, int]] = field(default_factory=dict)
    seeking: dict[Hashable, _Seeking] = field(default_factory=dict)
    silent_s: float = SILENT_S
    # partition -> (positioning, when a message of it was last handed)
    heard: dict[Hashable, tuple[int, float]] = field(default_factory=dict)
    # partition -> (positioning, since when ``silent`` has seen it hold unread messages)
    unread: dict[Hashable, tuple[int, float]] = field(default_factory=dict)

    def expected(self, tp: Hashable, positioned: tuple[int, int] | None) -> int | None:
        """The next offset of ``tp`` to process; ``positioned`` is (which positioning, the
        offset faust sought it to), None before faust positioned it."""
        if positioned is None:
            return None
        token, start = positioned
        last = self.last.get(tp)
        if last is None or last[0] != token:
            return start
        return max(start, last[1] + 1)

    def check(
        self, tp: Hashable, offset: int, positioned: tuple[int, int] | None, now: float
    ) -> Verdict:
        expected = self.expected(tp, positioned)
        if expected is None:
            return Verdict.SKIP
        assert positioned is not None
        self.heard[tp] = (positioned[0], now)
        if offset <= expected:
            self.seeking.pop(tp, None)
            return Verdict.PROCESS
        seeking = self.seeking.get(tp)
        if seeking is not None and seeking.offset == expected:
            if now - seeking.at < self.retry_s:
                return Verdict.SKIP
            if seeking.tries >= self.tries:
                del self.seeking[tp]
                return Verdict.STUCK
            seeking.at, seeking.tries = now, seeking.tries + 1
            return Verdict.SEEK
        self.seeking[tp] = _Seeking(expected, now, 1)
        return Verdict.SEEK

    def accept(self, tp: Hashable) -> None:
        """The gap before the offset just handed holds no message (the broker says so)."""
        self.seeking.pop(tp, None)

    def due(self, positioned: dict[Any, tuple[int, int]], now: float) -> list[tuple[Hashable, int]]:
        """The partitions whose seek back is due again, with the offset to seek to: the
        message awaited may never come (it was the last one), so this is asked on a timer,
        not only when later messages arrive. A partition repositioned since is forgotten."""
        out = []
        for tp, seeking in list(self.seeking.items()):
            if self.expected(tp, positioned.get(tp)) != seeking.offset:
                del self.seeking[tp]  # revoked, or positioned again by faust since
            elif now - seeking.at >= self.retry_s:
                seeking.at, seeking.tries = now, seeking.tries + 1
                out.append((tp, seeking.offset))
        return out

    def silent(
        self,
        positioned: dict[Any, tuple[int, int]],
        highwater: Callable[[Any], int | None],
        now: float,
    ) -> list[tuple[Hashable, int]]:
        """The positioned partitions that have held messages from their expected offset on
        (``highwater(tp)`` above it) for ``silent_s``, seen on every call since, and handed
        none meanwhile, with the offset to seek back to (``SILENT_S``). Asked on a timer;
        the clock starts when a call first sees the partition hold unread messages (an idle
        partition that just received one is not silent), or at the last message handed,
        whichever is later, and again after each seek. A partition with a gap already being
        sought is left to ``due``."""
        out = []
        for tp in list(self.unread):
            if tp not in positioned:
                del self.unread[tp]  # revoked
        for tp in list(self.heard):
            if tp not in positioned:
                del self.heard[tp]
        for tp, where in positioned.items():
            expected = self.expected(tp, where)
            end = highwater(tp)
            if expected is None or end is None or expected >= end or tp in self.seeking:
                self.unread.pop(tp, None)  # read to its end (or not ours to judge now)
                continue
            since = self.unread.get(tp)
            if since is None or since[0] != where[0]:
                self.unread[tp] = (where[0], now)  # unread messages seen: the clock starts
                continue
            heard = self.heard.get(tp)
            last = since[1] if heard is None or heard[0] != where[0] else max(since[1], heard[1])
            if now - last >= self.silent_s:
                self.unread[tp] = (where[0], now)
                out.append((tp, expected))
        return out

    def done(self, tp: Hashable, offset: int, positioned: tuple[int, int] | None) -> None:
        """``offset`` of ``tp`` is processed (a redelivery does not move it back)."""
        if positioned is None:
            return
        last = self.last.get(tp)
        if (
            last is None
            or positioned[0] > last[0]
            or (positioned[0] == last[0] and last[1] < offset)
        ):
            self.last[tp] = (positioned[0], offset)
