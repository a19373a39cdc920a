"""Revenue per rep and business day: the first KPI, as pure functions."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo


def business_day(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar day of ``moment`` in the business time zone (DST-correct)."""
    if moment.tzinfo is None:
        raise ValueError("business_day needs a timezone-aware datetime")
    return moment.astimezone(zone).date()


def revenue_key(rep_id: str, day: date) -> str:
    """Table key of one rep's revenue on one day: ``<YYYY-MM-DD>|<rep_id>``."""
    return f"{day.isoformat()}|{rep_id}"


def add_amount(total: str | None, amount: Decimal) -> str:
    """New running total (kept as a decimal string, so no cent is ever lost to floats)."""
    return str((Decimal(total) if total else Decimal(0)) + amount)
