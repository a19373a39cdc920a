"""Event-time windows: calendar windows in the business time zone and minute buckets.

Calendar windows (``day``, ``week`` (ISO, Monday), ``month``, ``quarter``) are half-open
``[start, end)`` intervals of local time, so a DST day lasts 23 or 25 hours. Rolling windows
(``15m``, ``1h``, ``24h``) are sums of 1-minute buckets ending at a given minute.

A window is open until stream time passes its end plus the grace period of its kind; an event
for a window that is already closed is late: it is still applied, as a correction of the
window's final values, while the window is kept (its retention, measured in event time).
An event for a window past its retention is left out of that kind (counted and sent to the
late topic, never silently dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from streams.contracts.kpi import WindowKind

CALENDAR_KINDS = (WindowKind.DAY, WindowKind.WEEK, WindowKind.MONTH, WindowKind.QUARTER)
ROLLING_MINUTES = {
    WindowKind.ROLLING_15M: 15,
    WindowKind.ROLLING_1H: 60,
    WindowKind.ROLLING_24H: 1440,
}


@dataclass(frozen=True, order=True)
class Window:
    """One calendar window: ``[start, end)`` in ``start.tzinfo`` (the business zone)."""

    kind: WindowKind
    start: datetime
    end: datetime

    # Python compares and subtracts datetimes sharing a tzinfo by wall time, which is wrong
    # across a DST change (a 25-hour day would be 24 hours): use instants.

    @property
    def seconds(self) -> float:
        """Real length of the window (a DST day has 23 or 25 hours)."""
        return self.end.timestamp() - self.start.timestamp()

    def contains(self, moment: datetime) -> bool:
        return self.start.timestamp() <= moment.timestamp() < self.end.timestamp()

    def elapsed_fraction(self, moment: datetime) -> float:
        """How much of the window has passed at ``moment`` (0..1), in real elapsed time."""
        done = moment.timestamp() - self.start.timestamp()
        return min(max(done / self.seconds, 0.0), 1.0)


def _local_midnight(year: int, month: int, day: int, zone: ZoneInfo) -> datetime:
    # Midnight exists in every IANA zone used for business; fold=0 picks the first if doubled.
    return datetime(year, month, day, tzinfo=zone)


def calendar_window(kind: WindowKind, moment: datetime, zone: ZoneInfo) -> Window:
    """The ``kind`` window of the business zone that contains the aware ``moment``."""
    if moment.tzinfo is None:
        raise ValueError("calendar_window needs a timezone-aware datetime")
    local = moment.astimezone(zone)
    if kind is WindowKind.DAY:
        start_date = local.date()
        end_date = start_date + timedelta(days=1)
    elif kind is WindowKind.WEEK:
        start_date = local.date() - timedelta(days=local.weekday())
        end_date = start_date + timedelta(days=7)
    elif kind is WindowKind.MONTH:
        start_date = local.date().replace(day=1)
        end_date = (start_date + timedelta(days=32)).replace(day=1)
    elif kind is WindowKind.QUARTER:
        first_month = 3 * ((local.month - 1) // 3) + 1
        start_date = local.date().replace(month=first_month, day=1)
        end_date = (start_date + timedelta(days=95)).replace(day=1)
    else:
        raise ValueError(f"{kind} is not a calendar window kind")
    return Window(
        kind,
        _local_midnight(start_date.year, start_date.month, start_date.day, zone),
        _local_midnight(end_date.year, end_date.month, end_date.day, zone),
    )


def minute_bucket(moment: datetime) -> int:
    """The 1-minute bucket of an aware ``moment``: minutes since the Unix epoch."""
    if moment.tzinfo is None:
        raise ValueError("minute_bucket needs a timezone-aware datetime")
    return int(moment.timestamp() // 60)


def rolling_buckets(kind: WindowKind, last_bucket: int) -> range:
    """The minute buckets of the rolling ``kind`` window ending with ``last_bucket``."""
    minutes = ROLLING_MINUTES[kind]
    return range(last_bucket - minutes + 1, last_bucket + 1)


def closes_at(end: datetime, grace: timedelta) -> datetime:
    """Stream time (UTC) at which a window ending at ``end`` closes."""
    return end.astimezone(UTC) + grace


def is_late(window_end: datetime, grace: timedelta, stream_time: datetime) -> bool:
    """True when an event for the window ending at ``window_end`` comes after it closed."""
    return stream_time.timestamp() >= closes_at(window_end, grace).timestamp()


# --- the windows of the engine's cells -------------------------------------------------------

MINUTE = "minute"
LIVE = "live"
CELL_KINDS = (MINUTE, "day", "week", "month", "quarter")
"""Kinds of the cells the engine keeps; rolling windows are sums of ``minute`` cells and
``live`` cells (start 0) hold point-in-time state such as the leads still waiting."""


@dataclass(frozen=True)
class Graces:
    """How long after its end a window of each kind still takes events, in milliseconds."""

    minute_ms: int = 600_000
    calendar_ms: int = 86_400_000

    def of(self, kind: str) -> int:
        return self.minute_ms if kind == MINUTE else self.calendar_ms

    @property
    def shortest(self) -> int:
        return min(self.minute_ms, self.calendar_ms)


@dataclass(frozen=True)
class Retention:
    """How long after its end a window of each kind is kept, in milliseconds of event time:
    until then a late event corrects it; after that it is removed and takes nothing."""

    minute_ms: int = 2 * 86_400_000
    day_ms: int = 90 * 86_400_000
    calendar_ms: int = 3 * 366 * 86_400_000  # weeks, months, quarters

    def of(self, kind: str) -> int:
        if kind == MINUTE:
            return self.minute_ms
        return self.day_ms if kind == "day" else self.calendar_ms

    @property
    def shortest(self) -> int:
        return min(self.minute_ms, self.day_ms, self.calendar_ms)


class CellWindows:
    """Start and end (epoch seconds) of the cell of each kind holding a moment, memoised.

    Calendar windows depend on the local date only; every zone offset in use is a multiple
    of 15 minutes, so the 15-minute slot of a moment determines its windows.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._memo: dict[tuple[str, int], tuple[int, int]] = {}

    def span(self, kind: str, at_ms: int) -> tuple[int, int]:
        if kind == MINUTE:
            start = (at_ms // 60_000) * 60
            return start, start + 60
        if kind == LIVE:
            return 0, 0
        slot = at_ms // 900_000
        memo = self._memo.get((kind, slot))
        if memo is None:
            moment = datetime.fromtimestamp(slot * 900, UTC)
            window = calendar_window(WindowKind(kind), moment, self.zone)
            memo = (int(window.start.timestamp()), int(window.end.timestamp()))
            if len(self._memo) > 100_000:
                self._memo.clear()
            self._memo[(kind, slot)] = memo
        return memo

    def gone(self, kind: str, start_s: int, event_ms: int | None, retention: Retention) -> bool:
        """Whether the window of ``kind`` starting at ``start_s`` is past its retention at
        event time ``event_ms``: removed, and no event can change it (live cells never are)."""
        if kind == LIVE or event_ms is None:
            return False
        return event_ms >= self.span(kind, start_s * 1000)[1] * 1000 + retention.of(kind)

    def late_kinds(
        self, at_ms: int, stream_ms: int | None, after: Graces | Retention
    ) -> tuple[str, ...]:
        """The cell kinds whose window of ``at_ms`` had ended more than ``after`` of its kind
        before ``stream_ms``: closed (graces, stream time) or gone (retention, event time)."""
        if stream_ms is None:
            return ()
        # On time for every kind: the minute's window ends first (the others hold it), so
        # before its end plus the shortest ``after`` no window of ``at_ms`` is past its own.
        if stream_ms < (at_ms // 60_000 + 1) * 60_000 + after.shortest:
            return ()
        return tuple(
            kind
            for kind in CELL_KINDS
            if stream_ms >= self.span(kind, at_ms)[1] * 1000 + after.of(kind)
        )
