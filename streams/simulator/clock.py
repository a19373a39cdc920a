"""How the floor's event time maps to wall time, for ``simulate --clock``.

- ``real``: event time is wall time. The floor follows real business hours, so at night and
  at weekends it is quiet (a trickle).
- ``always-open``: for demos and tests. Event time is wall time, and the floor works around
  the clock, every day, evenly busy: a demo at 3 a.m. or on a Sunday shows today's numbers
  moving. Event time is never ahead of the wall clock (a worker dead-letters events dated in
  its future, ``SALESPULSE_FUTURE_TOLERANCE_S``) and always on the wall clock's own day (the
  wallboard's "today" is the floor's today, whatever the hour).
- ``accelerated:<factor>``: simulated time starts at the wall time of the start and runs
  ``factor`` times faster, through real business hours (nights pass quickly). It runs ahead
  of the wall clock: a worker takes its events only with ``SALESPULSE_FUTURE_TOLERANCE_S``
  raised to cover the run.

Pure: every clock is a value; the start of a run is given, never read from the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from streams.simulator.hours import EVERY_DAY, BusinessHours

CLOCK_NAMES = ("real", "always-open", "accelerated:<factor>")


@dataclass(frozen=True)
class RealClock:
    """Event time is wall time."""

    zone: ZoneInfo

    @property
    def speed(self) -> float:
        """Event seconds per wall second (on average over a day)."""
        return 1.0

    def event_time(self, wall: datetime) -> datetime:
        return wall.astimezone(self.zone)

    def wall_time(self, event: datetime) -> datetime:
        return event.astimezone(self.zone)

    def hours(self) -> BusinessHours:
        return BusinessHours(self.zone)

    def __str__(self) -> str:
        return "real"


@dataclass(frozen=True)
class AcceleratedClock:
    """Simulated time starts at ``origin`` and runs ``factor`` times faster than wall time."""

    zone: ZoneInfo
    factor: float
    origin: datetime

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError("the acceleration factor must be positive")
        if self.origin.tzinfo is None:
            raise ValueError("origin must be timezone-aware")

    @property
    def speed(self) -> float:
        return self.factor

    def event_time(self, wall: datetime) -> datetime:
        return (self.origin + (wall - self.origin) * self.factor).astimezone(self.zone)

    def wall_time(self, event: datetime) -> datetime:
        return (self.origin + (event - self.origin) / self.factor).astimezone(self.zone)

    def hours(self) -> BusinessHours:
        return BusinessHours(self.zone)

    def __str__(self) -> str:
        return f"accelerated:{self.factor:g}"


@dataclass(frozen=True)
class AlwaysOpenClock(RealClock):
    """Event time is wall time (a real clock), on a floor open around the clock every day.

    An earlier version squeezed each wall-clock day into the business hours of its morning's
    date, so before 08:30 the floor's events were dated yesterday afternoon: a demo (or a test)
    run at night showed nothing for today.
    """

    def hours(self) -> BusinessHours:
        """Open every day from midnight to midnight, evenly busy: no lunch dip, no quiet
        edges, the same rate at any hour."""
        return BusinessHours(
            self.zone,
            opens=time(0),
            closes=time.max,
            lunch_level=1.0,
            edge_level=1.0,
            quiet_level=1.0,  # the microsecond between time.max and the next midnight
            open_days=EVERY_DAY,
        )

    def __str__(self) -> str:
        return "always-open"


Clock = RealClock | AcceleratedClock | AlwaysOpenClock


def parse_clock(text: str, *, zone: ZoneInfo, origin: datetime) -> Clock:
    """The clock named ``text`` (``real``, ``always-open``, ``accelerated:<factor>``).

    ``origin`` is the wall time the run starts at (used by the accelerated clock).
    """
    if text == "real":
        return RealClock(zone)
    if text == "always-open":
        return AlwaysOpenClock(zone)
    name, _, factor = text.partition(":")
    if name == "accelerated":
        try:
            value = float(factor)
        except ValueError:
            value = float("nan")
        if not value > 0 or value == float("inf"):
            raise ValueError(f"accelerated needs a positive factor, e.g. accelerated:60: {text!r}")
        return AcceleratedClock(zone, value, origin)
    raise ValueError(f"unknown clock {text!r}: expected one of {', '.join(CLOCK_NAMES)}")
