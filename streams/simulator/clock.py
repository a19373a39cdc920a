"""How the floor's event time maps to wall time, for ``simulate --clock``.

- ``real``: event time is wall time. The floor follows real business hours, so at night and
  at weekends it is quiet (a trickle).
- ``always-open``: for demos. The 24 wall-clock hours from a day's opening (08:30) to the
  next day's are mapped onto that day's business hours (08:30 -> 08:30, 20:30 -> 13:30,
  08:30 the next day -> 18:30), and every day is a working day: the floor is busy at any
  hour, and event time is never ahead of the wall clock (a worker dead-letters events dated
  in its future, ``SALESPULSE_FUTURE_TOLERANCE_S``); before 08:30 it is still yesterday's
  afternoon.
- ``accelerated:<factor>``: simulated time starts at the wall time of the start and runs
  ``factor`` times faster, through real business hours (nights pass quickly). It runs ahead
  of the wall clock: a worker takes its events only with ``SALESPULSE_FUTURE_TOLERANCE_S``
  raised to cover the run.

Pure: every clock is a value; the start of a run is given, never read from the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
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
class AlwaysOpenClock:
    """The wall-clock day from one opening to the next is squeezed into the first one's
    business hours.

    Monotonic and never ahead of the wall clock: from ``opens`` to the next day's ``opens``
    event time runs at (closes - opens) / 24 h of wall speed, and at the next opening it
    jumps forward from ``closes`` to ``opens``.
    """

    zone: ZoneInfo
    opens: time = time(8, 30)
    closes: time = time(18, 30)

    def __post_init__(self) -> None:
        if not self.opens < self.closes:
            raise ValueError("opens must be before closes")

    @property
    def speed(self) -> float:
        day = timedelta(days=1).total_seconds()
        return _seconds(self.opens, self.closes) / day

    def event_time(self, wall: datetime) -> datetime:
        day = wall.astimezone(self.zone).date()
        if wall.timestamp() < self._open_span(day)[0]:
            day -= timedelta(days=1)  # before today's opening: yesterday's afternoon
        opens, closes = self._open_span(day)
        start, end = opens, self._open_span(day + timedelta(days=1))[0]
        fraction = (wall.timestamp() - start) / (end - start)
        return datetime.fromtimestamp(opens + fraction * (closes - opens), self.zone)

    def wall_time(self, event: datetime) -> datetime:
        day = event.astimezone(self.zone).date()
        opens, closes = self._open_span(day)
        fraction = min(max((event.timestamp() - opens) / (closes - opens), 0.0), 1.0)
        start, end = opens, self._open_span(day + timedelta(days=1))[0]
        return datetime.fromtimestamp(start + fraction * (end - start), self.zone)

    def hours(self) -> BusinessHours:
        """Open every day, evenly busy (no lunch dip: the rate holds at any wall hour), and
        nothing at all out of hours (event time never goes there)."""
        return BusinessHours(
            self.zone,
            opens=self.opens,
            closes=self.closes,
            lunch_level=1.0,
            edge_level=1.0,
            quiet_level=0.0,
            open_days=EVERY_DAY,
        )

    def _open_span(self, day: date) -> tuple[float, float]:
        return (
            datetime.combine(day, self.opens, tzinfo=self.zone).timestamp(),
            datetime.combine(day, self.closes, tzinfo=self.zone).timestamp(),
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


def _midnight(day: date, zone: ZoneInfo) -> float:
    return datetime.combine(day, time(0), tzinfo=zone).timestamp()


def _seconds(start: time, end: time) -> float:
    def of_day(at: time) -> float:
        return at.hour * 3600 + at.minute * 60 + at.second + at.microsecond / 1e6

    return of_day(end) - of_day(start)
