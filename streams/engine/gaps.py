"""Every offset of a partition is processed, in order: a gap is sought back (pure logic).

faust-streaming 0.15 can lose a fetched message on its way to an agent around a rebalance:
it drops what is queued when the flow is suspended, resumes the flow before it seeks the
partitions to their committed offsets, and skips what its fetcher re-reads below the last
offset it delivered (docs/engine.md, known problems). A stage that processed offset 2 and is
handed offset 4 has lost 3. So each stage asks its :class:`OffsetGuard` first:

- nothing of a partition is processed before faust has positioned it after a rebalance
  (it seeks every partition to its committed offset, or, here, to its earliest one when
  nothing is committed: ``streams.engine.rebalance``); what came earlier is read again;
- the next offset expected is the one after the last processed since then, or where the
  partition was positioned; an older one is a redelivery (processed again: every stage is
  idempotent), a newer one is a gap: the stage seeks the partition back to the expected
  offset and skips messages until it comes;
- unless the broker says the gap holds no message (``streams.engine.gap_probe``: a
  transactional producer's commit markers, compaction), then the stage goes on at once;
- a seek can be undone by messages faust had already fetched, so it is repeated every
  ``retry_s``, on a timer too (the message awaited may be the partition's last); once it
  has been sought ``tries`` times in vain the guard says ``STUCK``: the stage asks the broker
  again and goes past the gap only if it holds no message; otherwise it logs an error and
  seeks back again. Never past offsets that hold messages: they would be lost.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

RETRY_S = 3.0
TRIES = 3


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
