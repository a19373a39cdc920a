"""Business hours of the simulated floor: when people work, and how busy they are.

Times are POSIX seconds (floats) so that the floor's arithmetic is exact across DST changes;
the calendar itself (opening hours, lunch, closed days) is in the business time zone.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

WEEKDAYS = frozenset(range(5))  # Monday = 0
EVERY_DAY = frozenset(range(7))

Segment = tuple[float, float, float]
"""(start, end, level): a stretch of time with a constant activity level (1.0 = busiest)."""


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours of the floor and its activity level through the day.

    Open days are busy from ``opens`` to ``closes`` (a slower first half hour and last hour,
    a dip at lunch); evenings, nights and closed days run at ``quiet_level``: a trickle, or
    nothing at all when it is 0.
    """

    zone: ZoneInfo
    opens: time = time(8, 30)
    closes: time = time(18, 30)
    lunch: tuple[time, time] = (time(12, 15), time(13, 45))
    lunch_level: float = 0.45
    edge_level: float = 0.7  # the first 30 minutes and the last hour of the day
    quiet_level: float = 0.03
    open_days: frozenset[int] = WEEKDAYS

    def __post_init__(self) -> None:
        if not self.open_days:
            raise ValueError("a floor needs at least one open day")
        if not self.opens < self.lunch[0] < self.lunch[1] < self.closes:
            raise ValueError("expected opens < lunch start < lunch end < closes")

    def segments(self, ts: float) -> Iterator[Segment]:
        """The stretches of constant activity from ``ts`` on, forever."""
        day = datetime.fromtimestamp(ts, self.zone).date()
        while True:
            for start, end, level in _day_segments(self, day):
                if end > ts:
                    yield max(start, ts), end, level
            day += timedelta(days=1)

    def level(self, ts: float) -> float:
        """Activity level at ``ts``: 1.0 at the busiest, ``quiet_level`` out of hours."""
        return next(self.segments(ts))[2]

    def is_open(self, ts: float) -> bool:
        """True during opening hours of an open day (lunch included)."""
        local = datetime.fromtimestamp(ts, self.zone)
        return local.weekday() in self.open_days and self.opens <= local.time() < self.closes

    def next_open(self, ts: float) -> float:
        """``ts`` if the floor is open then, else the next opening."""
        day = datetime.fromtimestamp(ts, self.zone).date()
        while True:
            if day.weekday() in self.open_days:
                opens, closes = _at(day, self.opens, self.zone), _at(day, self.closes, self.zone)
                if ts < opens:
                    return opens
                if ts < closes:
                    return ts
            day += timedelta(days=1)

    def after_work(self, ts: float, seconds: float) -> float:
        """The moment ``seconds`` of opening hours after ``ts`` (a task that waits for work).

        A lead created on Friday evening with a 20-minute response is touched on Monday at
        08:50: the delay only runs while the floor is open.
        """
        current = self.next_open(ts)
        remaining = seconds
        while True:
            day = datetime.fromtimestamp(current, self.zone).date()
            closes = _at(day, self.closes, self.zone)
            if current + remaining < closes:
                return current + remaining
            remaining -= closes - current
            current = self.next_open(closes)

    def next_arrival(self, ts: float, rate: float, rng: random.Random) -> float:
        """Next arrival after ``ts`` of a Poisson process of ``rate`` per second at level 1.

        Exact for the piecewise-constant level: an exponential draw of "work" is spent
        segment by segment, so quiet or closed stretches are crossed in one step.
        """
        if rate <= 0:
            raise ValueError("rate must be positive")
        work = rng.expovariate(1.0)
        for start, end, level in self.segments(ts):
            capacity = rate * level * (end - start)
            if work < capacity:
                return start + work / (rate * level)
            work -= capacity
        raise AssertionError("unreachable: segments never end")  # pragma: no cover

    def integral(self, start: float, end: float) -> float:
        """Level-seconds between ``start`` and ``end``: how much busy time they hold."""
        total = 0.0
        for seg_start, seg_end, level in self.segments(start):
            if seg_start >= end:
                break
            total += level * (min(seg_end, end) - seg_start)
        return total


def _at(day: date, at: time, zone: ZoneInfo) -> float:
    return datetime.combine(day, at, tzinfo=zone).timestamp()


@lru_cache(maxsize=64)
def _day_segments(hours: BusinessHours, day: date) -> tuple[Segment, ...]:
    zone = hours.zone
    midnight, next_midnight = _at(day, time(0), zone), _at(day + timedelta(days=1), time(0), zone)
    if day.weekday() not in hours.open_days:
        return ((midnight, next_midnight, hours.quiet_level),)
    opens, closes = _at(day, hours.opens, zone), _at(day, hours.closes, zone)
    lunch_starts, lunch_ends = _at(day, hours.lunch[0], zone), _at(day, hours.lunch[1], zone)
    warmed_up = min(opens + 1800, lunch_starts)
    winding_down = max(closes - 3600, lunch_ends)
    pieces = (
        (midnight, opens, hours.quiet_level),
        (opens, warmed_up, hours.edge_level),
        (warmed_up, lunch_starts, 1.0),
        (lunch_starts, lunch_ends, hours.lunch_level),
        (lunch_ends, winding_down, 1.0),
        (winding_down, closes, hours.edge_level),
        (closes, next_midnight, hours.quiet_level),
    )
    return tuple(piece for piece in pieces if piece[1] > piece[0])
