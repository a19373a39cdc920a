"""The KPI query API's answers, from Redis: the catalogue (``GET /api/kpis``) and a KPI's values
(``GET /api/kpis/{kpi}``); the history (``GET /api/kpis/{kpi}/history``) builds on this module
in ``streams.serving.history``, and the routes are in ``streams.serving.web_api``.

Every worker answers the same, since the values come from the shared read model
(``streams.serving.read_model``). Calendar windows are read as published; rolling windows (15m, 1h,
24h) are merged from the minute cells ending with the minute of ``at``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import redis.asyncio as aioredis

from streams.contracts.kpi import WindowKind
from streams.kpi import rep_sets
from streams.kpi.catalog import ALL_DIMENSIONS, KPIS, unit_of
from streams.kpi.cells import Cell, add_cell
from streams.kpi.values import INPUTS, Context, applies, decimal_text, value_of
from streams.kpi.windows import CALENDAR_KINDS, ROLLING_MINUTES, calendar_window
from streams.serving.read_model import as_text
from streams.settings import Settings

WINDOWS = tuple(str(k) for k in (*CALENDAR_KINDS, *ROLLING_MINUTES))


class QueryError(ValueError):
    """A bad query: the message names what is valid (HTTP 400)."""


def catalogue(currency: str) -> list[dict[str, Any]]:
    return [
        {
            "id": kpi.id,
            "unit": unit_of(kpi.id, currency),
            "description": kpi.description,
            "dimensions": list(kpi.dimensions),
        }
        for kpi in KPIS.values()
    ]


def parse_at(text: str | None, zone: ZoneInfo, default_ms: int | None) -> datetime:
    """``2017-03-15``, ``2017-03``, ``2017-Q1``, ``2017`` or an RFC 3339 date-time."""
    if not text:
        ms = default_ms if default_ms is not None else int(datetime.now(UTC).timestamp() * 1000)
        return datetime.fromtimestamp(ms / 1000, zone)
    text = text.strip()
    try:
        if m := re.fullmatch(r"(\d{4})-Q([1-4])", text):
            return datetime(int(m[1]), 3 * int(m[2]) - 2, 1, tzinfo=zone)
        if m := re.fullmatch(r"(\d{4})(?:-(\d{2}))?", text):
            return datetime(int(m[1]), int(m[2] or 1), 1, tzinfo=zone)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), zone)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise QueryError(
            f"at={text!r} is not a date: use 2017-03-15, 2017-03, 2017-Q1 or an RFC 3339 time"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _number(text: str | None) -> float | None:
    return None if text is None else float(Decimal(text))


def _out(key: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "value": _number(record["value"]),
        "numerator": _number(record["numerator"]),
        "denominator": _number(record["denominator"]),
        "final": record["final"],
        "revision": record["revision"],
    }


async def stream_ms(client: aioredis.Redis, prefix: str) -> int | None:
    score = await client.zscore(f"{prefix}stream_time", "global")
    return None if score is None else int(score)


def check_kpi(kpi: str) -> None:
    if kpi not in KPIS:
        raise QueryError(f"unknown KPI {kpi!r}; valid: {', '.join(KPIS)}")


def check_dimension(kpi: str, by: str | None) -> str:
    """The dimension asked (``global`` by default), if ``kpi`` is published by it."""
    dim = by or "global"
    if dim not in ALL_DIMENSIONS:
        raise QueryError(f"unknown dimension {dim!r}; valid: {', '.join(ALL_DIMENSIONS)}")
    if dim not in KPIS[kpi].dimensions:
        raise QueryError(
            f"{kpi} is not available by {dim}; valid: {', '.join(KPIS[kpi].dimensions)}"
        )
    return dim


async def query(
    client: aioredis.Redis, settings: Settings, kpi: str, window: str | None, at: str | None,
    by: str | None, key: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The answer of ``GET /api/kpis/{kpi}``; raises QueryError for a bad query."""
    prefix, zone = settings.redis_prefix, settings.zone
    check_kpi(kpi)
    window = window or "day"
    if window not in WINDOWS:
        raise QueryError(f"unknown window {window!r}; valid: {', '.join(WINDOWS)}")
    dim = check_dimension(kpi, by)
    now = await stream_ms(client, prefix)
    moment = parse_at(at, zone, now)
    unit = unit_of(kpi, settings.currency)
    answer: dict[str, Any] = {"kpi": kpi, "unit": unit, "dimension": dim}
    if kpi == "leads_waiting":
        values = await _published(client, prefix, kpi, "live", 0, dim, key)
        live_s = (now or 0) // 1000  # stream time is in ms
        answer["window"] = _window("live", live_s, live_s, zone)
    elif window in ROLLING_MINUTES:
        minutes = ROLLING_MINUTES[WindowKind(window)]
        if not applies(kpi, Context(kind="minute", dimension=dim)):
            kinds = ", ".join(map(str, CALENDAR_KINDS))
            raise QueryError(f"{kpi} is only available for calendar windows: {kinds}")
        last = int(moment.timestamp() // 60)
        start, end = (last - minutes + 1) * 60, (last + 1) * 60
        values = await _rolling(client, prefix, kpi, start, end, dim, key)
        answer["window"] = _window(window, start, end, zone)
    else:
        span = calendar_window(WindowKind(window), moment, zone)
        start, end = int(span.start.timestamp()), int(span.end.timestamp())
        values = await _published(client, prefix, kpi, window, start, dim, key)
        answer["window"] = _window(window, start, end, zone)
    answer["values"] = best_first(values)
    return answer


def best_first(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Values by decreasing value, then key; keys without a value last."""
    return sorted(values, key=lambda v: (v["value"] is None, -(v["value"] or 0), v["key"]))


def _window(kind: str, start: int, end: int, zone: ZoneInfo) -> dict[str, str]:
    return {
        "kind": kind,
        "start": datetime.fromtimestamp(start, zone).isoformat(),
        "end": datetime.fromtimestamp(end, zone).isoformat(),
        "tz": str(zone),
    }


async def _published(
    client: aioredis.Redis, prefix: str, kpi: str, kind: str, start: int, dim: str, key: str | None
) -> list[dict[str, Any]]:
    name = f"{prefix}kpi:{kpi}:{kind}:{start}:{dim}"
    if key is not None:
        raw = await client.hget(name, key)
        return [] if raw is None else [_out(key, orjson.loads(raw))]
    return [_out(as_text(k), orjson.loads(v)) for k, v in (await client.hgetall(name)).items()]


async def _rolling(
    client: aioredis.Redis, prefix: str, kpi: str, start: int, end: int, dim: str, key: str | None
) -> list[dict[str, Any]]:
    pipe = client.pipeline(transaction=False)
    for minute in range(start, end, 60):
        name = f"{prefix}cell:minute:{minute}:{dim}"
        if key is None:
            pipe.hgetall(name)
        else:
            pipe.hget(name, key)
    merged: dict[str, Cell] = {}
    final: dict[str, bool] = {}
    revision: dict[str, int] = {}
    for reply in await pipe.execute():
        if key is not None:
            rows = {} if reply is None else {key: reply}
        else:
            rows = {as_text(k): v for k, v in (reply or {}).items()}
        for k, raw in rows.items():
            stored = orjson.loads(raw)
            add_cell(merged.setdefault(k, {}), stored["c"], owned=True)
            final[k] = final.get(k, True) and stored["final"]
            revision[k] = max(revision.get(k, 0), stored["revision"])
    if rep_sets.COUNT in INPUTS[kpi] and dim in rep_sets.DIMENSIONS:
        reps = await _rolling_reps(client, prefix, start, end, dim, key)
        for k, cell in merged.items():
            cell.pop(rep_sets.COUNT, None)  # a sum of per-minute counts: a rep once a minute
            if reps.get(k):
                cell[rep_sets.COUNT] = reps[k]
    out = []
    ctx = Context(kind="minute", dimension=dim)
    for k, cell in merged.items():
        if not any(name in cell for name in INPUTS[kpi]):
            continue
        v = value_of(kpi, cell, ctx)
        record = {
            "value": decimal_text(v.value),
            "numerator": decimal_text(v.numerator),
            "denominator": decimal_text(v.denominator),
            "final": final[k], "revision": revision[k],
        }  # fmt: skip
        out.append(_out(k, record))
    return out


async def _rolling_reps(
    client: aioredis.Redis, prefix: str, start: int, end: int, dim: str, key: str | None
) -> dict[str, int]:
    """Distinct active reps per key over the minutes ``[start, end)``, from the minute shards
    of their cells (``streams.kpi.rep_sets``)."""
    pipe = client.pipeline(transaction=False)
    for minute in range(start, end, 60):
        pipe.hgetall(f"{prefix}cell:minute:{minute}:{dim}{rep_sets.MARK}")
    members: dict[str, Cell] = {}
    for reply in await pipe.execute():
        for field, raw in (reply or {}).items():
            k = as_text(field).rpartition("#")[0]
            if key is None or k == key:
                add_cell(members.setdefault(k, {}), orjson.loads(raw)["c"], owned=True)
    return {k: rep_sets.active(cell) for k, cell in members.items()}
