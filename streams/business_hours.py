"""Business hours as a setting: ``SALESPULSE_BUSINESS_HOURS="Mon-Fri 08:00-19:00"``.

Alerts that only make sense while the floor works (no events, leads waiting, revenue behind
target) read the worker's ``salespulse_business_hours`` gauge, which this module computes in
the business time zone (so DST needs nothing in the alert rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC = re.compile(
    r"^\s*(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
    r"(?P<opens>\d{1,2}:\d{2})-(?P<closes>\d{1,2}:\d{2})\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BusinessHours:
    days: frozenset[int]  # Monday = 0
    opens: time
    closes: time

    def contains(self, local: datetime) -> bool:
        """Whether ``local`` (a time in the business zone) is within business hours."""
        return local.weekday() in self.days and self.opens <= local.time() < self.closes


def parse_business_hours(spec: str) -> BusinessHours:
    """``"Mon-Fri 08:00-19:00"``, ``"Mon-Sat 09:30-18:00"`` or ``"Sun 10:00-12:00"``."""
    match = _SPEC.match(spec)
    error = (
        f"business hours {spec!r} not understood: write days and hours like "
        "'Mon-Fri 08:00-19:00' (days Mon..Sun, hours HH:MM, closing after opening)"
    )
    if match is None:
        raise ValueError(error)
    first, last = match["first"].lower(), (match["last"] or match["first"]).lower()
    if first not in DAYS or last not in DAYS or DAYS.index(last) < DAYS.index(first):
        raise ValueError(error)
    try:
        opens, closes = (
            time.fromisoformat(match["opens"].zfill(5)),
            time.fromisoformat(match["closes"].zfill(5)),
        )
    except ValueError as exc:
        raise ValueError(error) from exc
    if closes <= opens:
        raise ValueError(error)
    return BusinessHours(frozenset(range(DAYS.index(first), DAYS.index(last) + 1)), opens, closes)
