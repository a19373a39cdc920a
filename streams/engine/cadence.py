"""When each stage flushes (pure): as soon as its input is drained, else on its clock, and
never more than its flushes can afford.

A flush is what makes a stage's work visible downstream (the ingest's routed items, the entity
stage's partials, the publisher's KPI values in Redis), and every event crosses three of them,
so an event waits for three flushes. On a fixed clock alone (``SALESPULSE_ENGINE_FLUSH_
INTERVAL_S``, 0.5 s) that is up to 1.5 s of waiting on an idle floor. A stage therefore also
flushes once its stream queue is empty with messages waiting (there is nothing more to batch
them with), at most every ``GAP_S``. The clock flush runs whether or not messages wait: it
also sends stream-time markers and closes windows.

A flush costs much the same for 10 events as for 500 (every cell they changed published once,
its table writes, its sends confirmed, one Redis pipeline), and while it runs its stage takes
nothing in. So a stage waits, from the start of its last flush, at least that flush's
duration over ``SHARE`` before the next (clock or drained): it spends at most that share of
its time flushing, and under load its batches grow with its flushes instead of the flushes
eating the worker. On an idle floor a flush takes milliseconds and nothing changes. The wait
is at most ``MAX_S``: it bounds how late a window closes and what a flush holds.

Measured (2026-12-07, bench, runs alternated): at 1,000 orders/s the worker's event loop
was saturated and the produce -> Redis latency grew through the run, p99 4.6-6.0 s; with
``SHARE`` 0.25 and ``MAX_S`` 10 s, p99 1.6-1.8 s (the idle floor's latency unchanged). A
CRM replay's publisher flushes took 0.4 to 5.3 s each and most of the replay's time; its peak
RSS rose from ~420 to ~570 MB with the larger batches (docs/engine.md, "Flush cadence").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GAP_S = 0.05  # the shortest time between two flushes of a stage caused by a drained queue
SHARE = 0.25  # the most of a stage's time its flushes may take (see above)
MAX_S = 10.0  # the longest a stage's flush may be put off for its last flush's duration


@dataclass
class Cadence:
    every_s: float  # the clock: a flush at least this often (unless the last one was long)
    gap_s: float = GAP_S
    share: float = SHARE
    max_s: float = MAX_S
    last: float = -math.inf  # when the stage's last flush began (monotonic seconds)
    took_s: float = 0.0  # how long that flush took

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError(f"share must be in (0, 1], not {self.share}")

    @property
    def tick_s(self) -> float:
        """How often to ask ``due``."""
        return min(self.every_s, self.gap_s)

    @property
    def afford_s(self) -> float:
        """The least time from the last flush's start to the next: its duration over
        ``share``, at most ``max_s``."""
        return min(self.took_s / self.share, self.max_s)

    def due(self, now: float, waiting: bool, drained: bool) -> bool:
        """Whether the stage flushes now: ``waiting``, messages processed and not flushed;
        ``drained``, its stream queue is empty."""
        since = now - self.last
        if since < self.afford_s:
            return False
        return since >= self.every_s or (waiting and drained and since >= self.gap_s)

    def flushed(self, began: float, ended: float | None = None) -> None:
        """A flush began at ``began``; ``ended``, when it was done (once known)."""
        self.last = began
        if ended is not None:
            self.took_s = max(0.0, ended - began)
