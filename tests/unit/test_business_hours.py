"""streams.business_hours: the SALESPULSE_BUSINESS_HOURS setting."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from streams.business_hours import parse_business_hours
from streams.settings import Settings

PARIS = ZoneInfo("Europe/Paris")


def test_weekdays_within_the_hours() -> None:
    hours = parse_business_hours("Mon-Fri 08:00-19:00")
    assert hours.contains(datetime(2026, 11, 23, 8, 0, tzinfo=PARIS))  # Monday
    assert hours.contains(datetime(2026, 11, 27, 18, 59, tzinfo=PARIS))  # Friday
    assert not hours.contains(datetime(2026, 11, 23, 19, 0, tzinfo=PARIS))  # closing time
    assert not hours.contains(datetime(2026, 11, 23, 7, 59, tzinfo=PARIS))
    assert not hours.contains(datetime(2026, 11, 28, 10, 0, tzinfo=PARIS))  # Saturday


def test_single_day_and_short_hours() -> None:
    hours = parse_business_hours("sat 9:30-12:00")
    assert hours.contains(datetime(2026, 11, 28, 9, 30, tzinfo=PARIS))
    assert not hours.contains(datetime(2026, 11, 27, 10, 0, tzinfo=PARIS))


@pytest.mark.parametrize("spec", ["", "Mon-Fri", "Fri-Mon 08:00-19:00", "Mon-Fri 19:00-08:00",
                                  "Mon-Fri 25:00-26:00", "Lun-Ven 08:00-19:00"])  # fmt: skip
def test_bad_specs_name_the_expected_form(spec: str) -> None:
    with pytest.raises(ValueError, match="Mon-Fri 08:00-19:00"):
        parse_business_hours(spec)


def test_the_setting_is_checked_at_start() -> None:
    with pytest.raises(ValueError, match="business hours"):
        Settings(business_hours="always")
