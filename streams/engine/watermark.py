"""The ingest's watermark: how far in event time every input partition it reads has come.

Kafka delivers the partitions of the input topics at different paces (a backlog of calls may
be read before the emails of the same hours), so the largest event time seen says little
about what is still to come. The watermark is the *smallest* of the largest event times of
the partitions with data, leaving out partitions idle for ``idle_s`` (caught up, or quiet);
the entity stage judges lateness against it. Pure state, no I/O.
"""

from __future__ import annotations

import time


class Watermark:
    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self.newest: dict[tuple[str, int], int] = {}  # source partition -> max event time ms
        self.seen_at: dict[tuple[str, int], float] = {}  # source partition -> monotonic time

    def observe(self, topic: str, partition: int, at_ms: int, now: float | None = None) -> None:
        source = (topic, partition)
        if at_ms > self.newest.get(source, -1):
            self.newest[source] = at_ms
        self.seen_at[source] = time.monotonic() if now is None else now

    def value(self, now: float | None = None) -> int | None:
        """The watermark in ms, None before any event."""
        if not self.newest:
            return None
        now = time.monotonic() if now is None else now
        active = [t for s, t in self.newest.items() if now - self.seen_at[s] < self.idle_s]
        return min(active) if active else max(self.newest.values())
