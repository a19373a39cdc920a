"""streams.kpi.windows: calendar windows in the business zone, DST included; buckets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contracts.kpi import WindowKind as K
from streams.kpi.windows import (
    CALENDAR_KINDS,
    CELL_KINDS,
    CellWindows,
    Graces,
    Retention,
    calendar_window,
    is_late,
    minute_bucket,
    rolling_buckets,
)

PARIS = ZoneInfo("Europe/Paris")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "moment", "start", "end", "hours"),
    [
        # 2026-10-25: clocks go back in Paris, the day lasts 25 hours.
        (K.DAY, utc(2026, 10, 25, 12), "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 25),
        # 2026-03-29: clocks go forward, 23 hours.
        (K.DAY, utc(2026, 3, 29, 12), "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", 23),
        # 22:30 UTC on the 24th is already the 25th in Paris (UTC+2).
        (K.DAY, utc(2026, 10, 24, 22, 30), "2026-10-25T00:00:00+02:00", None, 25),
        (K.DAY, utc(2026, 10, 25, 23, 30), "2026-10-26T00:00:00+01:00", None, 24),
        # ISO week: Monday to Monday; 2027-01-01 is a Friday of week 53 of 2026.
        (K.WEEK, utc(2027, 1, 1, 12), "2026-12-28T00:00:00+01:00", "2027-01-04T00:00:00+01:00", 168),
        (K.WEEK, utc(2026, 10, 28, 12), "2026-10-26T00:00:00+01:00", None, 168),
        (K.WEEK, utc(2026, 10, 20, 12), "2026-10-19T00:00:00+02:00", "2026-10-26T00:00:00+01:00", 169),
        (K.MONTH, utc(2017, 2, 15), "2017-02-01T00:00:00+01:00", "2017-03-01T00:00:00+01:00", 672),
        (K.MONTH, utc(2016, 12, 31, 23, 30), "2017-01-01T00:00:00+01:00", None, 744),
        (K.QUARTER, utc(2017, 5, 20), "2017-04-01T00:00:00+02:00", "2017-07-01T00:00:00+02:00", 2184),
        (K.QUARTER, utc(2017, 12, 31, 22, 59), "2017-10-01T00:00:00+02:00", "2018-01-01T00:00:00+01:00", 2209),
    ],
)  # fmt: skip
def test_calendar_windows(
    kind: K, moment: datetime, start: str, end: str | None, hours: int
) -> None:
    window = calendar_window(kind, moment, PARIS)
    assert window.start.isoformat() == start
    if end is not None:
        assert window.end.isoformat() == end
    assert window.seconds == hours * 3600
    assert window.contains(moment)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2040, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.sampled_from(CALENDAR_KINDS),
)
def test_windows_tile_time(moment: datetime, kind: K) -> None:
    window = calendar_window(kind, moment, PARIS)
    assert window.contains(moment)
    following = calendar_window(kind, window.end, PARIS)
    assert following.start == window.end  # no gap, no overlap
    assert not window.contains(window.end)
    assert window.start.astimezone(PARIS).time().isoformat() == "00:00:00"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar_window(K.DAY, datetime(2026, 1, 1), PARIS)  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        minute_bucket(datetime(2026, 1, 1))  # noqa: DTZ001


def test_elapsed_fraction_uses_real_time_on_a_25_hour_day() -> None:
    day = calendar_window(K.DAY, utc(2026, 10, 25, 12), PARIS)
    # 12:30 UTC = 13:30 local: 13.5 h of wall clock, but 14.5 real hours have passed.
    assert day.elapsed_fraction(utc(2026, 10, 25, 12, 30)) == pytest.approx(14.5 / 25)
    assert day.elapsed_fraction(utc(2026, 10, 30)) == 1.0
    assert day.elapsed_fraction(utc(2026, 10, 1)) == 0.0


def test_minute_buckets_and_rolling_windows() -> None:
    moment = utc(2026, 1, 5, 10, 0, 59)
    assert minute_bucket(moment) == minute_bucket(utc(2026, 1, 5, 10, 0, 0))
    assert minute_bucket(moment) + 1 == minute_bucket(utc(2026, 1, 5, 10, 1))
    last = minute_bucket(moment)
    for kind, minutes in ((K.ROLLING_15M, 15), (K.ROLLING_1H, 60), (K.ROLLING_24H, 1440)):
        buckets = rolling_buckets(kind, last)
        assert len(buckets) == minutes
        assert buckets[-1] == last


def test_lateness_against_stream_time() -> None:
    end = datetime(2026, 10, 26, tzinfo=PARIS)
    grace = timedelta(days=1)
    assert not is_late(end, grace, end + grace - timedelta(seconds=1))
    assert is_late(end, grace, (end + grace).astimezone(UTC))


def test_a_window_is_gone_once_event_time_passes_its_end_plus_retention() -> None:
    windows = CellWindows(ZoneInfo("Europe/Paris"))
    retention = Retention(minute_ms=3_600_000, day_ms=86_400_000, calendar_ms=86_400_000)
    day_start, day_end = windows.span("day", 1_774_000_000_000)
    end_ms = day_end * 1000
    assert not windows.gone("day", day_start, end_ms + 86_400_000 - 1, retention)
    assert windows.gone("day", day_start, end_ms + 86_400_000, retention)
    assert not windows.gone("day", day_start, None, retention)  # no event time yet
    assert not windows.gone("live", 0, 10**15, retention)  # live cells are never removed
    # the same rule as late_kinds, which leaves a past-retention window out of new events
    for at_ms in (end_ms - 1, end_ms + 86_400_000):
        late = windows.late_kinds(day_start * 1000, at_ms, retention)
        assert ("day" in late) == windows.gone("day", day_start, at_ms, retention)


@pytest.mark.parametrize(
    "after",
    [
        Graces(),
        Graces(minute_ms=3 * 86_400_000, calendar_ms=3_600_000),  # a minute waits longest
        Retention(),
        Retention(minute_ms=400 * 86_400_000, day_ms=86_400_000, calendar_ms=5 * 86_400_000),
    ],
)
def test_late_kinds_is_its_definition_for_every_moment(after: Graces | Retention) -> None:
    """The on-time shortcut (before the minute's end plus the shortest ``after``) gives what
    the definition gives: every kind whose window of the moment ended ``after`` before."""
    windows = CellWindows(ZoneInfo("Europe/Paris"))
    rng = random.Random(7)
    base = 1_774_000_000_000
    for _ in range(20_000):
        at_ms = base + rng.randrange(-400 * 86_400_000, 86_400_000)
        stream_ms = at_ms + rng.choice([-1, 1, 60_000, 3_600_000, 86_400_000, 500 * 86_400_000])
        stream_ms += rng.randrange(-120_000, 120_000)
        expected = tuple(
            kind
            for kind in CELL_KINDS
            if stream_ms >= windows.span(kind, at_ms)[1] * 1000 + after.of(kind)
        )
        assert windows.late_kinds(at_ms, stream_ms, after) == expected, (at_ms, stream_ms)
