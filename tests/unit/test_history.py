"""KPI history (streams/serving/history.py): bounds, series of windows, limits, the answer, one
Redis pipeline, and the command's table and CSV."""

from __future__ import annotations

import argparse
import csv
import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from streams.cli.kpi import _misused, render_history, write_csv
from streams.contracts.kpi import WindowKind
from streams.kpi.windows import calendar_window
from streams.serving.api import QueryError
from streams.serving.history import (
    MAX_WINDOWS,
    build_answer,
    check,
    count,
    daily_trend,
    history,
    label,
    month_by_day,
    parse_bound,
    plan,
    read_trend,
    spans,
)
from streams.settings import Settings
from tests.kpi_tools import history_mismatches
from tests.reference.results import Result

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("kind", "text", "day"),
    [
        ("day", "2017-03-15", date(2017, 3, 15)),
        ("week", "2017-03-15", date(2017, 3, 15)),
        ("week", "2017-W11", date(2017, 3, 13)),
        ("month", "2017-03", date(2017, 3, 1)),
        ("month", "2017-03-15", date(2017, 3, 15)),
        ("quarter", "2017-Q1", date(2017, 1, 1)),
        ("quarter", "2017-Q4", date(2017, 10, 1)),
        ("quarter", " 2017-02-15 ", date(2017, 2, 15)),
    ],
)
def test_bounds_in_the_natural_form_of_each_kind(kind: str, text: str, day: date) -> None:
    assert parse_bound("from", text, kind) == day


@pytest.mark.parametrize(
    ("kind", "text", "named"),
    [
        ("day", "2017-03", "2017-03-15"),
        ("day", "2017-02-30", "2017-03-15"),
        ("week", "2017-W54", "2017-W11"),
        ("week", "2021-W53", "2017-W11"),  # 2021 has 52 ISO weeks
        ("month", "2017-13", "2017-03"),
        ("month", "2017-Q1", "2017-03"),
        ("quarter", "2017-Q5", "2017-Q1"),
        ("quarter", "2017-03", "2017-Q1"),
        ("month", "last month", "2017-03"),
    ],
)
def test_a_bad_bound_names_the_forms_accepted(kind: str, text: str, named: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse_bound("to", text, kind)
    message = str(raised.value)
    assert f"to={text!r}" in message
    assert f"not a {kind}" in message
    assert named in message


def test_months_from_october_2016_to_december_2017() -> None:
    days = plan("month", "2016-10", "2017-12", None)
    assert len(days) == 15
    assert [label("month", d) for d in (days[0], days[3], days[-1])] == [
        "2016-10",
        "2017-01",
        "2017-12",
    ]
    # A date names the window that contains it, at both ends.
    assert plan("month", "2016-10-31", "2017-12-01", None) == days
    assert plan("quarter", "2016-11-05", "2017-Q4", None) == [
        date(2016, 10, 1),
        date(2017, 1, 1),
        date(2017, 4, 1),
        date(2017, 7, 1),
        date(2017, 10, 1),
    ]


def test_weeks_are_iso_weeks_across_a_53_week_year() -> None:
    days = plan("week", "2026-12-24", "2027-W01", None)
    assert [label("week", d) for d in days] == ["2026-W52", "2026-W53", "2027-W01"]
    assert all(d.weekday() == 0 for d in days)
    assert days[0] == date(2026, 12, 21)


def test_default_range_is_twelve_windows_ending_with_the_current_one() -> None:
    days = plan("month", None, None, date(2026, 12, 2))
    assert (days[0], days[-1], len(days)) == (date(2026, 1, 1), date(2026, 12, 1), 12)
    assert plan("day", None, "2026-03-05", date(2030, 1, 1))[0] == date(2026, 2, 22)
    assert len(plan("day", "2026-11-01", None, date(2026, 12, 2))) == 32


def test_from_after_to_is_refused() -> None:
    with pytest.raises(QueryError, match=r"from \(2017-12\) is after to \(2017-01\)"):
        plan("month", "2017-12", "2017-01", None)


def test_at_most_400_windows_per_answer() -> None:
    assert MAX_WINDOWS == 400
    first = date(2016, 1, 1)
    last_allowed = date.fromordinal(first.toordinal() + MAX_WINDOWS - 1)
    assert len(plan("day", first.isoformat(), last_allowed.isoformat(), None)) == MAX_WINDOWS
    too_far = date.fromordinal(last_allowed.toordinal() + 1).isoformat()
    with pytest.raises(QueryError) as raised:
        plan("day", first.isoformat(), too_far, None)
    assert "401 day windows" in str(raised.value)
    assert "at most 400" in str(raised.value)
    # Counted, not listed: a range of thousands of years is refused at once.
    with pytest.raises(QueryError, match="at most 400"):
        plan("day", "0001-01-01", "9998-12-31", None)
    assert count("day", date(1, 1, 1), date(9998, 12, 31)) > 3_000_000


def test_a_window_past_the_calendar_is_a_query_error_not_a_crash() -> None:
    with pytest.raises(QueryError, match="out of range"):
        spans("month", plan("month", "9999-12", "9999-12", None), PARIS)


def test_spans_are_the_engine_windows_including_dst_days() -> None:
    days = plan("day", "2026-03-28", "2026-03-30", None)
    windows = spans("day", days, PARIS)
    assert [w.end - w.start for w in windows] == [86_400, 82_800, 86_400]  # clocks go forward
    for kind in ("day", "week", "month", "quarter"):
        for span in spans(kind, plan(kind, "2026-01-01", "2026-12-31", None)[:3], PARIS):
            moment = datetime.fromtimestamp(span.start, UTC)
            window = calendar_window(WindowKind(kind), moment, PARIS)
            assert (span.start, span.end) == (window.start.timestamp(), window.end.timestamp())
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))


@pytest.mark.parametrize(
    ("kpi", "window", "by", "named"),
    [
        ("revenue", "1h", None, "day, week, month, quarter"),
        ("revenue", "15m", None, "GET /api/kpis/revenue?window=15m"),
        ("revenue", "year", None, "day, week, month, quarter"),
        ("revenu", "month", None, "revenue"),
        ("revenue", "month", "country", "region"),
        ("calls", "month", "product", "team"),
        ("leads_waiting", "day", None, "live"),
        ("target_attainment", "day", None, "month, quarter"),
    ],
)
def test_a_bad_query_names_what_is_valid(kpi: str, window: str, by: str | None, named: str) -> None:
    with pytest.raises(QueryError) as raised:
        check(kpi, window, by)
    assert named in str(raised.value)


def test_check_defaults() -> None:
    assert check("revenue", None, None) == ("day", "global")
    assert check("win_rate", "month", "rep") == ("month", "rep")


def record(value: str | None, final: bool = True, revision: int = 3) -> bytes:
    return orjson.dumps(
        {
            "value": value,
            "numerator": value,
            "denominator": "4" if value else None,
            "final": final,
            "revision": revision,
        }
    )


def test_the_answer_has_every_window_empty_ones_included() -> None:
    windows = spans("month", plan("month", "2017-01", "2017-04", None), PARIS)
    rows = [
        {"ana": record("10"), "bob": record("30.5")},
        {},  # no data that month: an empty point, not a missing one
        {"ana": record(None, final=False, revision=1)},
        {"cy": record("7")},
    ]
    answer = build_answer("revenue", "EUR", "rep", "month", PARIS, None, windows, rows)
    assert answer["window"] == {
        "kind": "month",
        "tz": "Europe/Paris",
        "from": "2017-01",
        "to": "2017-04",
        "start": "2017-01-01T00:00:00+01:00",
        "end": "2017-05-01T00:00:00+02:00",
        "count": 4,
    }
    assert (answer["kpi"], answer["unit"], answer["dimension"], answer["key"]) == (
        "revenue",
        "EUR",
        "rep",
        None,
    )
    assert answer["keys"] == ["ana", "bob", "cy"]
    points = answer["points"]
    assert [p["label"] for p in points] == ["2017-01", "2017-02", "2017-03", "2017-04"]
    assert points[1] == {
        "label": "2017-02",
        "start": "2017-02-01T00:00:00+01:00",
        "end": "2017-03-01T00:00:00+01:00",
        "values": [],
    }
    assert points[2]["end"] == "2017-04-01T00:00:00+02:00"  # the DST month
    assert [v["key"] for v in points[0]["values"]] == ["bob", "ana"]  # best first
    assert points[0]["values"][0] == {
        "key": "bob",
        "value": 30.5,
        "numerator": 30.5,
        "denominator": 4.0,
        "final": True,
        "revision": 3,
    }
    assert points[2]["values"][0]["value"] is None
    assert points[2]["values"][0]["final"] is False
    assert orjson.loads(orjson.dumps(answer)) == answer  # plain JSON


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.commands: list[tuple[str, str, str | None]] = []

    def hgetall(self, name: str) -> None:
        self.commands.append(("hgetall", name, None))

    def hget(self, name: str, key: str) -> None:
        self.commands.append(("hget", name, key))

    async def execute(self) -> list[Any]:
        self.redis.executed.append(list(self.commands))
        out: list[Any] = []
        for op, name, key in self.commands:
            table = self.redis.hashes.get(name, {})
            out.append(dict(table) if op == "hgetall" else table.get((key or "").encode()))
        return out


class FakeRedis:
    def __init__(self, stream_ms: int | None, hashes: dict[str, dict[bytes | str, bytes]]):
        self.stream_ms, self.hashes = stream_ms, hashes
        self.executed: list[list[tuple[str, str, str | None]]] = []

    async def zscore(self, name: str, member: str) -> float | None:
        return None if self.stream_ms is None else float(self.stream_ms)

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert transaction is False
        return FakePipeline(self)

    async def hgetall(self, name: str) -> dict[bytes, bytes]:
        raise AssertionError("history reads through one pipeline, not one call per window")

    async def hget(self, name: str, key: str) -> bytes | None:
        raise AssertionError("history reads through one pipeline, not one call per window")


def start_of(year: int, month: int, day: int = 1) -> int:
    return int(datetime(year, month, day, tzinfo=PARIS).timestamp())


SETTINGS = Settings(redis_prefix="p:", business_tz="Europe/Paris", currency="EUR")


async def test_history_reads_every_window_in_one_pipeline() -> None:
    march = start_of(2017, 3)
    client = FakeRedis(
        None,
        {
            f"p:kpi:win_rate:month:{march}:rep": {b"ana": record("0.5"), b"bob": record("0.25")},
            f"p:kpi:win_rate:month:{start_of(2017, 5)}:rep": {b"bob": record("1")},
        },
    )
    got = await history(client, SETTINGS, "win_rate", "month", "2016-10", "2017-12", "rep", None)  # type: ignore[arg-type]
    assert len(client.executed) == 1
    assert len(client.executed[0]) == 15
    assert {op for op, _, _ in client.executed[0]} == {"hgetall"}
    assert client.executed[0][5][1] == f"p:kpi:win_rate:month:{march}:rep"
    assert [len(p["values"]) for p in got["points"]] == [0] * 5 + [2, 0, 1] + [0] * 7
    assert got["unit"] == "ratio"
    assert got["keys"] == ["ana", "bob"]

    one = await history(client, SETTINGS, "win_rate", "month", "2017-03", "2017-05", "rep", "bob")  # type: ignore[arg-type]
    assert {op for op, _, key in client.executed[1]} == {"hget"}
    assert {key for _, _, key in client.executed[1]} == {"bob"}
    assert [[v["value"] for v in p["values"]] for p in one["points"]] == [[0.25], [], [1.0]]
    assert one["key"] == "bob"


async def test_history_without_to_ends_with_the_window_of_stream_time() -> None:
    now = datetime(2017, 3, 31, 23, 30, tzinfo=PARIS)  # still March in Paris, April in UTC+3
    client = FakeRedis(int(now.timestamp() * 1000), {})
    got = await history(client, SETTINGS, "revenue", "month", None, None, None, None)  # type: ignore[arg-type]
    assert (got["window"]["from"], got["window"]["to"]) == ("2016-04", "2017-03")
    assert all(p["values"] == [] for p in got["points"])


async def test_month_by_day_for_the_wallboard() -> None:
    day2 = start_of(2026, 2, 2)
    client = FakeRedis(
        None,
        {f"p:kpi:revenue:day:{day2}:global": {b"all": record("120.5")}},
    )
    got = await month_by_day(client, SETTINGS, "revenue", "2026-02-01T00:00:00+01:00")  # type: ignore[arg-type]
    assert len(got["points"]) == 28
    assert got["points"][0]["label"] == "2026-02-01"
    assert got["points"][-1]["label"] == "2026-02-28"
    assert [p["values"][0]["value"] for p in got["points"] if p["values"]] == [120.5]
    assert got["points"][1]["values"][0]["key"] == "all"


async def test_the_wallboard_trend_is_one_value_per_day_of_its_month() -> None:
    client = FakeRedis(
        None, {f"p:kpi:revenue:day:{start_of(2026, 3, 29)}:global": {b"all": record("80")}}
    )
    month = {"start": "2026-03-01T00:00:00+01:00", "end": "2026-04-01T00:00:00+02:00"}
    trend = await read_trend(client, SETTINGS, month)  # type: ignore[arg-type]
    assert trend is not None
    assert (trend["kpi"], trend["unit"]) == ("revenue", "EUR")
    assert len(trend["days"]) == 31
    assert trend["days"][28] == {"date": "2026-03-29", "value": 80.0}  # the 23-hour day
    assert [d["value"] for d in trend["days"]].count(None) == 30  # days without data: null
    assert await read_trend(client, SETTINGS, None) is None  # no month known: no strip
    assert daily_trend({"kpi": "x", "unit": "u", "points": []}) == {
        "kpi": "x",
        "unit": "u",
        "days": [],
    }


# --- the command ---------------------------------------------------------------------------


def answer_by_rep() -> dict[str, Any]:
    windows = spans("month", plan("month", "2017-01", "2017-03", None), PARIS)
    rows: list[dict[str, bytes]] = [{"ana": record("10"), "bob": record("1234.5")}, {}, {}]
    rows[2] = {"bob": record("2", final=False, revision=1)}
    return build_answer("revenue", "EUR", "rep", "month", PARIS, None, windows, rows)


def test_the_table_by_rep_has_a_row_per_window_and_a_column_per_key() -> None:
    text = render_history(answer_by_rep())
    lines = text.splitlines()
    assert lines[0] == ("revenue (EUR) by rep, 3 month windows 2017-01 .. 2017-03 (Europe/Paris)")
    assert lines[1].split() == ["month", "ana", "bob"]
    assert lines[2].split() == ["2017-01", "10", "1,234.5"]
    assert lines[3].split() == ["2017-02", "-", "-"]  # the empty month is a row
    assert lines[4].split() == ["2017-03", "-", "2"]


def test_the_table_of_a_global_kpi_has_numerators_and_revisions() -> None:
    windows = spans("day", plan("day", "2017-03-01", "2017-03-02", None), PARIS)
    rows: list[dict[str, bytes]] = [{"all": record("3")}, {}]
    answer = build_answer("calls", "count", "global", "day", PARIS, None, windows, rows)
    lines = render_history(answer).splitlines()
    assert lines[1].split() == [
        "day", "key", "value", "numerator", "denominator", "final", "revision",
    ]  # fmt: skip
    assert lines[2].split() == ["2017-03-01", "all", "3", "3", "4", "yes", "3"]
    assert lines[3].split() == ["2017-03-02", "-", "-", "-", "-", "-", "-"]


def test_csv_has_a_row_per_window_and_key_and_keeps_empty_windows(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    assert write_csv(answer_by_rep(), path) == 4
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["window"], r["key"], r["value"]) for r in rows] == [
        ("2017-01", "bob", "1234.5"),
        ("2017-01", "ana", "10.0"),
        ("2017-02", "", ""),
        ("2017-03", "bob", "2.0"),
    ]
    assert rows[0]["start"] == "2017-01-01T00:00:00+01:00"
    assert rows[0]["end"] == "2017-02-01T00:00:00+01:00"
    assert (rows[3]["final"], rows[3]["revision"], rows[3]["denominator"]) == ("false", "1", "4.0")


def test_history_options_only_go_together() -> None:
    def args(**kw: Any) -> argparse.Namespace:
        base = {"history": False, "at": None, "from_": None, "to": None, "csv": None}
        return argparse.Namespace(**{**base, **kw})

    assert _misused(args()) is None
    assert _misused(args(history=True, from_="2017-01", csv=Path("x.csv"))) is None
    assert "--from" in (_misused(args(from_="2017-01")) or "")
    assert "--csv" in (_misused(args(csv=Path("x.csv"))) or "")
    assert "--at" in (_misused(args(history=True, at="2017-03")) or "")


def test_history_mismatches_sees_missing_extra_wrong_and_gaps() -> None:
    """tests/kpi_tools.history_mismatches, the check of the integration tests, can fail."""
    windows = spans("month", plan("month", "2017-01", "2017-03", None), PARIS)
    jan, feb, mar = (w.start for w in windows)
    reference = {
        ("revenue", "month", jan, "rep", "ana"): Result(Decimal(10), Decimal(10), None),
        ("revenue", "month", mar, "rep", "bob"): Result(Decimal(2), Decimal(2), None),
        ("revenue", "month", feb, "global", "all"): Result(Decimal(99), Decimal(99), None),
        ("orders", "month", feb, "rep", "ana"): Result(Decimal(1), Decimal(1), None),
    }

    def answer(rows: list[dict[str, bytes]]) -> dict[str, Any]:
        return build_answer("revenue", "EUR", "rep", "month", PARIS, None, windows, rows)

    def rec(value: str) -> bytes:
        return orjson.dumps(
            {"value": value, "numerator": value, "denominator": None, "final": True, "revision": 1}
        )

    good = answer([{"ana": rec("10")}, {}, {"bob": rec("2")}])
    assert history_mismatches(good, reference, ("2017-01", "2017-03")) == []
    assert history_mismatches(good, reference, ("2017-01", "2017-04")) != []  # not the range asked
    missing = answer([{"ana": rec("10")}, {}, {}])
    assert [p.split(" ")[0] for p in history_mismatches(missing, reference)] == ["missing"]
    extra = answer([{"ana": rec("10")}, {"cy": rec("5")}, {"bob": rec("2")}])
    assert [p.split(" ")[0] for p in history_mismatches(extra, reference)] == ["extra"]
    wrong = answer([{"ana": rec("10.01")}, {}, {"bob": rec("2")}])
    assert any("value" in p for p in history_mismatches(wrong, reference))
    gap = answer([{"ana": rec("10")}, {}, {"bob": rec("2")}])
    del gap["points"][1]
    assert any("gap" in p for p in history_mismatches(gap, reference))
