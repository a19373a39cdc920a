"""The ingest's watermark: how far in event time every input partition it reads has come.

Kafka delivers the partitions of the input topics at different paces (a backlog of calls may
be read before the emails of the same hours), so the largest event time seen says little
about what is still to come. The watermark is the *smallest* of the largest event times of
the partitions assigned, leaving out a partition only when it is caught up (nothing left to
read) and has been quiet for ``idle_s``; the entity stage judges lateness against it.

An assigned partition with a backlog that has not delivered an event yet (just started, just
assigned, or still behind the others in the fetch order) could hold anything, so until it
does the watermark does not move: it stays where it was (None at start, meaning "judge
nothing late"). The value never goes back. No I/O: the caller says whether a partition is
caught up and which partitions are assigned.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CaughtUp = Callable[[str, int, int | None], bool]
"""(topic, partition, last offset processed or None) -> nothing left to read there"""


class Watermark:
    def __init__(self, idle_s: float, caught_up: CaughtUp) -> None:
        self.idle_s = idle_s
        self.caught_up = caught_up
        self.newest: dict[tuple[str, int], int] = {}  # source partition -> max event time ms
        self.seen_at: dict[tuple[str, int], float] = {}  # source partition -> monotonic time
        self.offset: dict[tuple[str, int], int] = {}  # source partition -> last offset
        self.started = time.monotonic()
        self.last: int | None = None  # the last value given: the watermark never goes back

    def read(self, topic: str, partition: int, offset: int, now: float | None = None) -> None:
        """A message of ``topic[partition]`` was processed (valid or not)."""
        source = (topic, partition)
        self.seen_at[source] = time.monotonic() if now is None else now
        self.offset[source] = offset

    def observe(self, topic: str, partition: int, at_ms: int) -> None:
        """A valid event of ``topic[partition]`` happened at ``at_ms``."""
        source = (topic, partition)
        if at_ms > self.newest.get(source, -1):
            self.newest[source] = at_ms

    def _quiet(self, source: tuple[str, int], now: float) -> bool:
        return now - self.seen_at[source] >= self.idle_s and self.caught_up(
            source[0], source[1], self.offset.get(source)
        )

    def all_quiet(self, sources: list[tuple[str, int]], now: float | None = None) -> bool:
        """Whether every one of ``sources`` (the input partitions assigned here) is quiet:
        caught up and without a message for ``idle_s``; then windows may close on wall time."""
        now = time.monotonic() if now is None else now
        if not sources or now - self.started < self.idle_s:
            return False  # no assignment known (starting, rebalancing): nothing to say
        for topic, partition in sources:
            if (topic, partition) in self.seen_at:
                if not self._quiet((topic, partition), now):
                    return False
            elif not self.caught_up(topic, partition, None):
                return False
        return True

    def status(self, sources: list[tuple[str, int]], now: float | None = None) -> str:
        """What holds the watermark (for the status log)."""
        now = time.monotonic() if now is None else now
        waiting = [
            f"{t}/{p}"
            for t, p in sources
            if (t, p) not in self.newest and not self.caught_up(t, p, self.offset.get((t, p)))
        ]
        active = [
            (self.newest[s], f"{s[0]}/{s[1]}")
            for s in sources
            if s in self.newest and not self._quiet(s, now)
        ]
        slowest = min(active) if active else None
        return f"waiting_for={waiting} slowest={slowest} active={len(active)}"

    def value(self, sources: list[tuple[str, int]], now: float | None = None) -> int | None:
        """The watermark in ms over ``sources`` (the input partitions assigned here); None
        while nothing can be said yet."""
        now = time.monotonic() if now is None else now
        active: list[int] = []
        for source in sources:
            newest = self.newest.get(source)
            if newest is None:
                # No valid event from it since start: it holds everything unless empty.
                if not self.caught_up(source[0], source[1], self.offset.get(source)):
                    return self.last
            elif not self._quiet(source, now):
                active.append(newest)
        if not sources:
            return self.last  # no assignment known (starting, rebalancing)
        if active:
            value = min(active)
        elif self.newest:
            value = max(self.newest.values())  # everything quiet: the newest event seen
        else:
            return self.last
        if self.last is None or value > self.last:
            self.last = value
        return self.last
