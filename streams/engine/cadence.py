"""When each stage flushes (pure): as soon as its input is drained, else on its clock.

A flush is what makes a stage's work visible downstream (the ingest's routed items, the entity
stage's partials, the publisher's KPI values in Redis), and every event crosses three of them,
so an event waits for three flushes. On a fixed clock alone (``SALESPULSE_ENGINE_FLUSH_
INTERVAL_S``, 0.5 s) that is up to 1.5 s of waiting on an idle floor. A stage therefore also
flushes once its stream queue is empty with messages waiting (there is nothing more to batch
them with), at most every ``GAP_S``; under load its queue is seldom empty and it flushes when
full (its own thresholds) or on the clock, in batches as large as before. The clock flush runs
whether or not messages wait: it also sends stream-time markers and closes windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GAP_S = 0.05  # the shortest time between two flushes of a stage caused by a drained queue


@dataclass
class Cadence:
    every_s: float  # the clock: a flush at least this often
    gap_s: float = GAP_S
    last: float = -math.inf  # when the stage last flushed (monotonic seconds)

    @property
    def tick_s(self) -> float:
        """How often to ask ``due``."""
        return min(self.every_s, self.gap_s)

    def due(self, now: float, waiting: bool, drained: bool) -> bool:
        """Whether the stage flushes now: ``waiting``, messages processed and not flushed;
        ``drained``, its stream queue is empty."""
        since = now - self.last
        return since >= self.every_s or (waiting and drained and since >= self.gap_s)

    def flushed(self, now: float) -> None:
        self.last = now
