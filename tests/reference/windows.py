"""Windows of the reference implementation: start and end of a window, in epoch seconds.

``minute`` buckets are ``floor(epoch / 60) * 60``. Calendar windows start at local midnight
(business time zone, zoneinfo) of their first day: the day itself, the ISO Monday, the 1st of
the month, the 1st of the quarter's first month. Ends are the next window's start, computed
from local dates and converted to timestamps, so that DST days last 23 or 25 hours.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

MINUTE = "minute"
CALENDAR_KINDS = ("day", "week", "month", "quarter")
KINDS = (MINUTE, *CALENDAR_KINDS)


def _midnight(day: date, tz: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def _first_day(kind: str, day: date) -> date:
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    raise ValueError(f"not a calendar kind: {kind!r}")


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def window_start(kind: str, at: datetime, tz: ZoneInfo) -> int:
    """Start (epoch seconds) of the ``kind`` window containing the aware time ``at``."""
    if kind == MINUTE:
        return math.floor(at.timestamp() / 60) * 60
    return _midnight(_first_day(kind, at.astimezone(tz).date()), tz)


def window_end(kind: str, start: int, tz: ZoneInfo) -> int:
    """End (epoch seconds, excluded) of the ``kind`` window starting at ``start``."""
    if kind == MINUTE:
        return start + 60
    first = datetime.fromtimestamp(start, tz).date()
    if kind == "day":
        return _midnight(first + timedelta(days=1), tz)
    if kind == "week":
        return _midnight(first + timedelta(days=7), tz)
    if kind == "month":
        return _midnight(_add_months(first, 1), tz)
    if kind == "quarter":
        return _midnight(_add_months(first, 3), tz)
    raise ValueError(f"unknown window kind: {kind!r}")


def windows_between(kind: str, first: int, last: int, tz: ZoneInfo) -> list[int]:
    """Starts of every ``kind`` window from the one starting at ``first`` to ``last``."""
    starts = [first]
    while starts[-1] < last:
        starts.append(window_end(kind, starts[-1], tz))
    return starts


def target_period(kind: str, start: int, tz: ZoneInfo) -> str | None:
    """``2017-03`` for a month window, ``2017-Q1`` for a quarter, else None."""
    first = datetime.fromtimestamp(start, tz).date()
    if kind == "month":
        return f"{first.year:04d}-{first.month:02d}"
    if kind == "quarter":
        return f"{first.year:04d}-Q{(first.month - 1) // 3 + 1}"
    return None
