"""KPI history: the series of calendar windows between two bounds, in one answer.

``GET /api/kpis/{kpi}/history?window=month&from=2016-10&to=2017-12&by=rep[&key=K]`` and
``salespulse kpi KPI --history --from 2016-10 --to 2017-12 --window month``.

The answer has one point per window whose start is in ``[from, to]``, in order, each with the
window's ``start`` and ``end`` and its values per key as ``GET /api/kpis/{kpi}`` gives them;
a window without data (never published, or past its retention) is a point with no values,
so a chart gets a regular axis. ``from`` and ``to`` name a window in the natural form of its
kind (``2017-03`` for a month, ``2017-Q1`` for a quarter, a date for a day, a date or an ISO
week for a week); a date also names the month or quarter containing it. ``to`` defaults to
the window of the current stream time and ``from`` to ``DEFAULT_WINDOWS - 1`` windows before
``to``. At most ``MAX_WINDOWS`` windows per answer. Calendar kinds only: rolling windows are
sums of minute buckets kept a short time, asked one at a time with ``GET /api/kpis/{kpi}``.

The parsing and the series are pure (``plan``, ``build_answer``); Redis is read in one
pipeline (``read_points``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import redis.asyncio as aioredis

from streams.contracts.kpi import WindowKind
from streams.kpi.catalog import unit_of
from streams.kpi.values import Context, applies
from streams.kpi.windows import CALENDAR_KINDS, ROLLING_MINUTES, calendar_window
from streams.serving.api import (
    QueryError,
    _out,
    best_first,
    check_dimension,
    check_kpi,
    stream_ms,
)
from streams.serving.read_model import as_text
from streams.settings import Settings

KINDS = tuple(str(k) for k in CALENDAR_KINDS)
MAX_WINDOWS = 400
DEFAULT_WINDOWS = 12

FORMS = {
    "day": "a date, 2017-03-15",
    "week": "an ISO week, 2017-W11, or a date in it, 2017-03-15",
    "month": "a month, 2017-03, or a date in it, 2017-03-15",
    "quarter": "a quarter, 2017-Q1, or a date in it, 2017-02-15",
}


# --- bounds and windows: pure ------------------------------------------------------------


def window_first_day(kind: str, day: date) -> date:
    """The first day of the ``kind`` window containing ``day``."""
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    raise ValueError(f"{kind} is not a calendar kind")


def _months(day: date) -> int:
    return day.year * 12 + day.month - 1


def shift(kind: str, first_day: date, n: int) -> date:
    """The first day of the window ``n`` windows after the one starting on ``first_day``."""
    if kind == "day":
        return first_day + timedelta(days=n)
    if kind == "week":
        return first_day + timedelta(days=7 * n)
    months = _months(first_day) + n * (3 if kind == "quarter" else 1)
    return date(months // 12, months % 12 + 1, 1)


def count(kind: str, first: date, last: date) -> int:
    """How many ``kind`` windows from the one of ``first`` to the one of ``last`` (inclusive);
    0 when ``last`` is before ``first``. Arithmetic: nothing is listed."""
    a, b = window_first_day(kind, first), window_first_day(kind, last)
    if kind in ("day", "week"):
        n = (b - a).days // (1 if kind == "day" else 7) + 1
    else:
        n = (_months(b) - _months(a)) // (3 if kind == "quarter" else 1) + 1
    return max(n, 0)


def label(kind: str, first_day: date) -> str:
    """The name of the window starting on ``first_day``, in the form ``from``/``to`` take."""
    if kind == "month":
        return f"{first_day:%Y-%m}"
    if kind == "quarter":
        return f"{first_day.year}-Q{(first_day.month - 1) // 3 + 1}"
    if kind == "week":
        year, week, _ = first_day.isocalendar()
        return f"{year}-W{week:02d}"
    return first_day.isoformat()


def parse_bound(name: str, text: str, kind: str) -> date:
    """A day inside the window that ``text`` names (``name`` is ``from`` or ``to``)."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        if kind == "week" and (m := re.fullmatch(r"(\d{4})-W(\d{2})", text)):
            return date.fromisocalendar(int(m[1]), int(m[2]), 1)
        if kind == "month" and (m := re.fullmatch(r"(\d{4})-(\d{2})", text)):
            return date(int(m[1]), int(m[2]), 1)
        if kind == "quarter" and (m := re.fullmatch(r"(\d{4})-Q([1-4])", text)):
            return date(int(m[1]), 3 * int(m[2]) - 2, 1)
    except ValueError:
        pass
    raise QueryError(f"{name}={text!r} is not a {kind}: use {FORMS[kind]}")


@dataclass(frozen=True)
class Span:
    """One window of the series: its name and ``[start, end)`` in epoch seconds."""

    label: str
    start: int
    end: int


def plan(
    kind: str, from_text: str | None, to_text: str | None, today: date | None,
    limit: int = MAX_WINDOWS,
) -> list[date]:  # fmt: skip
    """The first days of the windows of the answer, checked; ``today`` (the day of the current
    stream time) gives the default ``to``."""
    if to_text:
        last = parse_bound("to", to_text, kind)
    elif today is not None:
        last = today
    else:
        raise ValueError("plan needs today when to is not given")
    if from_text:
        first = parse_bound("from", from_text, kind)
    else:
        try:
            first = shift(kind, window_first_day(kind, last), 1 - DEFAULT_WINDOWS)
        except (ValueError, OverflowError) as exc:
            raise QueryError(f"to={to_text!r} is too early for {DEFAULT_WINDOWS} windows") from exc
    n = count(kind, first, last)
    if n == 0:
        raise QueryError(
            f"from ({label(kind, window_first_day(kind, first))}) is after "
            f"to ({label(kind, window_first_day(kind, last))})"
        )
    if n > limit:
        raise QueryError(
            f"{n} {kind} windows from {label(kind, window_first_day(kind, first))} to "
            f"{label(kind, window_first_day(kind, last))}: at most {limit} per answer; "
            "ask for a shorter range or a longer window"
        )
    start = window_first_day(kind, first)
    return [shift(kind, start, i) for i in range(n)]


def spans(kind: str, first_days: Sequence[date], zone: ZoneInfo) -> list[Span]:
    """The windows starting on ``first_days`` in the business zone, as the engine cuts them."""
    out = []
    for day in first_days:
        try:
            noon = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
            window = calendar_window(WindowKind(kind), noon, zone)
            start, end = int(window.start.timestamp()), int(window.end.timestamp())
        except (ValueError, OverflowError) as exc:
            raise QueryError(f"the {kind} of {day.isoformat()} is out of range") from exc
        out.append(Span(label(kind, day), start, end))
    return out


def check(kpi: str, window: str | None, by: str | None) -> tuple[str, str]:
    """(window kind, dimension) of a history query, or QueryError naming what is valid."""
    check_kpi(kpi)
    kind = window or "day"
    if kind in ROLLING_MINUTES:
        raise QueryError(
            f"history is for calendar windows ({', '.join(KINDS)}); {kind} is a rolling "
            f"window: ask GET /api/kpis/{kpi}?window={kind}&at=... for one"
        )
    if kind not in KINDS:
        raise QueryError(f"unknown window {kind!r}; valid for history: {', '.join(KINDS)}")
    dim = check_dimension(kpi, by)
    if kpi == "leads_waiting":
        raise QueryError("leads_waiting is a live value (leads waiting now): it has no history")
    if not applies(kpi, Context(kind=kind, dimension=dim)):
        kinds = [k for k in KINDS if applies(kpi, Context(kind=k, dimension=dim))]
        raise QueryError(f"{kpi} is only published for {', '.join(kinds)} windows")
    return kind, dim


def build_answer(
    kpi: str, unit: str, dim: str, kind: str, zone: ZoneInfo, key: str | None,
    windows: Sequence[Span], rows: Sequence[dict[str, bytes]],
) -> dict[str, Any]:  # fmt: skip
    """The answer from the records read for each window (``rows[i]``: key -> raw record)."""

    def moment(s: int) -> str:
        return datetime.fromtimestamp(s, zone).isoformat()

    points: list[dict[str, Any]] = [
        {
            "label": span.label,
            "start": moment(span.start),
            "end": moment(span.end),
            "values": best_first([_out(k, orjson.loads(raw)) for k, raw in row.items()]),
        }
        for span, row in zip(windows, rows, strict=True)
    ]
    return {
        "kpi": kpi,
        "unit": unit,
        "dimension": dim,
        "key": key,
        "window": {
            "kind": kind,
            "tz": str(zone),
            "from": windows[0].label,
            "to": windows[-1].label,
            "start": moment(windows[0].start),
            "end": moment(windows[-1].end),
            "count": len(windows),
        },
        "keys": sorted({v["key"] for p in points for v in p["values"]}),
        "points": points,
    }


# --- Redis -------------------------------------------------------------------------------


async def read_points(
    client: aioredis.Redis, prefix: str, kpi: str, kind: str, dim: str, key: str | None,
    windows: Sequence[Span],
) -> list[dict[str, bytes]]:  # fmt: skip
    """The published records of each window (key -> raw JSON), in one pipeline."""
    pipe = client.pipeline(transaction=False)
    for span in windows:
        name = f"{prefix}kpi:{kpi}:{kind}:{span.start}:{dim}"
        if key is None:
            pipe.hgetall(name)
        else:
            pipe.hget(name, key)
    rows: list[dict[str, bytes]] = []
    for reply in await pipe.execute():
        if key is not None:
            rows.append({} if reply is None else {key: reply})
        else:
            rows.append({as_text(k): v for k, v in (reply or {}).items()})
    return rows


async def history(
    client: aioredis.Redis, settings: Settings, kpi: str, window: str | None,
    from_text: str | None, to_text: str | None, by: str | None, key: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The answer of ``GET /api/kpis/{kpi}/history``; raises QueryError for a bad query."""
    kind, dim = check(kpi, window, by)
    zone = settings.zone
    today: date | None = None
    if not to_text:
        now = await stream_ms(client, settings.redis_prefix)
        ms = now if now is not None else int(datetime.now(UTC).timestamp() * 1000)
        today = datetime.fromtimestamp(ms / 1000, zone).date()
    windows = spans(kind, plan(kind, from_text, to_text, today), zone)
    rows = await read_points(client, settings.redis_prefix, kpi, kind, dim, key, windows)
    unit = unit_of(kpi, settings.currency)
    return build_answer(kpi, unit, dim, kind, zone, key, windows, rows)


async def month_by_day(
    client: aioredis.Redis, settings: Settings, kpi: str, month_start: str
) -> dict[str, Any]:
    """``kpi`` by day (global) for every day of the month starting at ``month_start`` (an ISO
    time of the business zone, as the API's windows give it): the wallboard's trend."""
    first = datetime.fromisoformat(month_start).astimezone(settings.zone).date()
    last = shift("month", first.replace(day=1), 1) - timedelta(days=1)
    return await history(
        client, settings, kpi, "day", first.isoformat(), last.isoformat(), "global", "all"
    )


def daily_trend(answer: dict[str, Any]) -> dict[str, Any]:
    """The wallboard's strip from a by-day, global answer: one ``{"date", "value"}`` per day."""
    return {
        "kpi": answer["kpi"],
        "unit": answer["unit"],
        "days": [
            {"date": p["label"], "value": p["values"][0]["value"] if p["values"] else None}
            for p in answer["points"]
        ],
    }


async def read_trend(
    client: aioredis.Redis, settings: Settings, month: dict[str, str] | None, kpi: str = "revenue"
) -> dict[str, Any] | None:
    """``kpi`` by day over the wallboard's ``month`` (its span; None when unknown)."""
    if month is None:
        return None
    return daily_trend(await month_by_day(client, settings, kpi, month["start"]))
