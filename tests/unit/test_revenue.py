"""streams.revenue: business day in the business time zone, table keys, exact running totals."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.revenue import add_amount, business_day, revenue_key

PARIS = ZoneInfo("Europe/Paris")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# 2026 in Paris: clocks go 02:00 CET -> 03:00 CEST on 2026-03-29 (01:00Z), and
# 03:00 CEST -> 02:00 CET on 2026-10-25 (01:00Z). Local midnight is 23:00Z in winter (UTC+1)
# and 22:00Z in summer (UTC+2).
@pytest.mark.parametrize(
    ("instant", "day"),
    [
        # spring forward
        ("2026-03-28T22:59:59", date(2026, 3, 28)),  # 23:59:59 CET
        ("2026-03-28T23:00:00", date(2026, 3, 29)),  # 00:00 CET: the short day starts
        ("2026-03-29T00:59:59", date(2026, 3, 29)),  # 01:59:59 CET, just before the change
        ("2026-03-29T01:00:00", date(2026, 3, 29)),  # 03:00 CEST, just after
        ("2026-03-29T21:59:59", date(2026, 3, 29)),  # 23:59:59 CEST
        ("2026-03-29T22:00:00", date(2026, 3, 30)),  # 00:00 CEST, an hour before UTC midnight
        ("2026-03-29T23:30:00", date(2026, 3, 30)),
        # fall back
        ("2026-10-24T21:59:59", date(2026, 10, 24)),  # 23:59:59 CEST
        ("2026-10-24T22:00:00", date(2026, 10, 25)),  # 00:00 CEST: the long day starts
        ("2026-10-24T22:30:00", date(2026, 10, 25)),  # UTC still says 24th
        ("2026-10-25T00:30:00", date(2026, 10, 25)),  # 02:30 CEST, first time
        ("2026-10-25T01:30:00", date(2026, 10, 25)),  # 02:30 CET, second time
        ("2026-10-25T22:59:59", date(2026, 10, 25)),  # 23:59:59 CET
        ("2026-10-25T23:00:00", date(2026, 10, 26)),  # 00:00 CET
        ("2026-10-25T23:30:00", date(2026, 10, 26)),  # UTC still says 25th
        # an ordinary winter and summer day, for contrast
        ("2026-01-15T22:59:59", date(2026, 1, 15)),
        ("2026-01-15T23:00:00", date(2026, 1, 16)),
        ("2026-07-15T21:59:59", date(2026, 7, 15)),
        ("2026-07-15T22:00:00", date(2026, 7, 16)),
    ],
)
def test_business_day_in_paris(instant: str, day: date) -> None:
    assert business_day(utc(instant), PARIS) == day


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 10, 25, 0, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 10, 24, 22, 30, tzinfo=UTC),
        datetime(2026, 10, 24, 17, 30, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 10, 25, 7, 30, tzinfo=ZoneInfo("Asia/Tokyo")),
    ],
)
def test_business_day_depends_on_the_instant_not_on_the_offset_it_is_written_in(
    moment: datetime,
) -> None:
    # All four are the same instant: 2026-10-25 00:30 CEST in Paris.
    assert business_day(moment, PARIS) == date(2026, 10, 25)


@pytest.mark.parametrize(
    ("first_hour", "day", "hours"),
    [
        (utc("2026-03-28T12:00:00"), date(2026, 3, 29), 23),  # spring forward: a short day
        (utc("2026-10-24T12:00:00"), date(2026, 10, 25), 25),  # fall back: a long day
        (utc("2026-06-09T12:00:00"), date(2026, 6, 10), 24),
    ],
)
def test_business_day_lasts_as_long_as_the_local_day(
    first_hour: datetime, day: date, hours: int
) -> None:
    per_day = Counter(business_day(first_hour + timedelta(hours=h), PARIS) for h in range(72))
    assert per_day[day] == hours


@pytest.mark.parametrize(
    "moment",
    [datetime(2026, 10, 25, 1, 30), datetime(2026, 3, 29, 2, 30), datetime(2026, 1, 1)],  # noqa: DTZ001
)
def test_business_day_rejects_naive_datetimes(moment: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        business_day(moment, PARIS)


@pytest.mark.parametrize(
    ("rep_id", "day", "key"),
    [
        ("rep-1", date(2026, 3, 29), "2026-03-29|rep-1"),
        ("a|b", date(2026, 10, 25), "2026-10-25|a|b"),
        ("|", date(2026, 1, 1), "2026-01-01||"),
        ("|leading|and|trailing|", date(2026, 12, 31), "2026-12-31||leading|and|trailing|"),
        ("rep with spaces", date(2026, 2, 28), "2026-02-28|rep with spaces"),
        ("représentant", date(2028, 2, 29), "2028-02-29|représentant"),
    ],
)
def test_revenue_key(rep_id: str, day: date, key: str) -> None:
    assert revenue_key(rep_id, day) == key


@given(a=st.tuples(st.text(min_size=1), st.dates()), b=st.tuples(st.text(min_size=1), st.dates()))
def test_revenue_keys_of_different_reps_or_days_differ(
    a: tuple[str, date], b: tuple[str, date]
) -> None:
    assert (revenue_key(*a) == revenue_key(*b)) == (a == b)


@pytest.mark.parametrize(
    ("total", "amount", "expected"),
    [
        (None, Decimal("10.10"), Decimal("10.10")),
        ("", Decimal("0.01"), Decimal("0.01")),
        ("0.10", Decimal("0.20"), Decimal("0.30")),  # 0.1 + 0.2 != 0.3 in floats
        ("1234567890123456.78", Decimal("0.01"), Decimal("1234567890123456.79")),  # > 2**53
        ("99.99", Decimal("0.01"), Decimal("100.00")),
        ("5.00", Decimal("0"), Decimal("5.00")),
    ],
)
def test_add_amount_is_exact(total: str | None, amount: Decimal, expected: Decimal) -> None:
    result = add_amount(total, amount)
    assert isinstance(result, str)
    assert Decimal(result) == expected


def test_add_amount_result_reads_back_to_the_cent() -> None:
    assert add_amount(None, Decimal("12.50")) == "12.50"
    assert add_amount("0.10", Decimal("0.20")) == "0.30"


CENTS = st.decimals(
    min_value=Decimal("0"),
    max_value=Decimal("9999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)


@given(amounts=st.lists(CENTS, max_size=200))
def test_running_total_equals_decimal_sum(amounts: list[Decimal]) -> None:
    total: str | None = None
    for amount in amounts:
        total = add_amount(total, amount)
        assert isinstance(total, str)
    expected = sum(amounts, Decimal(0))
    assert Decimal(total or "0") == expected
    if amounts:  # the cents survive the string round trip: no float ever rounds them
        assert Decimal(total or "0").as_tuple().exponent == -2
