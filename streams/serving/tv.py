"""The TV wallboard: ``GET /tv`` (one self-contained page), ``/tv/stream`` (Server-Sent
Events) and ``/tv/snapshot`` (the same JSON, once).

Every value comes from the Redis read model through ``streams.serving.api.query``, the code path of
``GET /api/kpis/{kpi}`` (window ``day`` or ``month`` at the current stream time, by
``global`` or ``rep``), so the wallboard shows exactly what the API answers, whichever worker
is asked. Rep names, which the read model does not hold, come from the worker's reference
cache (it follows ``ref.reps``); a rep without a record is shown by its id.

The stream polls Redis about once a second (one read per worker, shared by every open
wallboard), sends a snapshot when it differs from the last one sent, and a comment as a
heartbeat after 15 s of silence. It ends quietly when the client goes or the worker stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from importlib import resources
from typing import Any

import faust
import orjson
import redis.asyncio as aioredis
from aiohttp import web as aioweb
from redis.exceptions import RedisError

from streams.ingest.reference_cache import ReferenceCache
from streams.serving.api import query, stream_ms
from streams.serving.history import read_trend
from streams.serving.tv_alerts import AlertSource
from streams.settings import Settings

log = logging.getLogger(__name__)

#: What the page shows, as API queries: (window, dimension) -> KPIs.
DAY_GLOBAL = (
    "revenue", "orders", "average_deal_size", "win_rate", "calls", "emails", "meetings",
    "lead_response_seconds", "leads_waiting", "new_customers", "churned_customers",
)  # fmt: skip
ACTIVITY = (
    "calls", "emails", "meetings", "lead_response_seconds", "leads_waiting", "new_customers",
    "churned_customers",
)  # fmt: skip
MONTH_GLOBAL = ("revenue", "target_attainment", "target_pacing")
MONTH_REP = ("revenue", "orders", "target_attainment")
QUERIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("day", "global", DAY_GLOBAL),
    ("month", "global", MONTH_GLOBAL),
    ("month", "rep", MONTH_REP),
)
LEADERBOARD_SIZE = 10
POLL_S = 1.0
HEARTBEAT_S = 15.0

Answers = Mapping[tuple[str, str, str], Mapping[str, Any]]  # (window, dim, kpi) -> API answer


# --- the snapshot: pure -----------------------------------------------------------------


def _global(answer: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The ``all`` record of a by=global answer (None when nothing is published)."""
    if answer is None:
        return None
    return next((v for v in answer["values"] if v["key"] == "all"), None)


def _value(answer: Mapping[str, Any] | None) -> float | None:
    record = _global(answer)
    return None if record is None else record["value"]


def _span(answers: Answers, window: str) -> dict[str, str] | None:
    """The ``window`` (day or month) the answers are about (None if none answered)."""
    for answer in answers.values():
        span = answer["window"]
        if span["kind"] == window:
            return {"start": span["start"], "end": span["end"], "tz": span["tz"]}
    return None


def build_snapshot(
    answers: Answers, names: Mapping[str, str], currency: str, top: int = LEADERBOARD_SIZE,
    alerts: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:  # fmt: skip
    """Everything the wallboard shows, from the API answers of ``QUERIES``.

    Numbers are the API's values (ratios as fractions, money in ``currency``); a value the
    read model does not have yet, or whose query failed (no answer), is null. ``names`` maps
    rep ids to names; ``alerts`` are the firing alerts of the banner (``tv_alerts``).
    """

    def day(kpi: str) -> float | None:
        return _value(answers.get(("day", "global", kpi)))

    def month(kpi: str) -> float | None:
        return _value(answers.get(("month", "global", kpi)))

    attainment = _global(answers.get(("month", "global", "target_attainment")))
    by_rep = {
        kpi: {v["key"]: v["value"] for v in answers[("month", "rep", kpi)]["values"]}
        for kpi in MONTH_REP
        if ("month", "rep", kpi) in answers
    }
    revenue_by_rep = answers.get(("month", "rep", "revenue"), {"values": []})["values"]
    ranked = [v for v in revenue_by_rep if v["value"] is not None]  # the API sorts them
    leaderboard = [
        {
            "rank": rank,
            "rep_id": v["key"],
            "name": names.get(v["key"]) or v["key"],
            "revenue": v["value"],
            "orders": by_rep.get("orders", {}).get(v["key"]),
            "attainment": by_rep.get("target_attainment", {}).get(v["key"]),
        }
        for rank, v in enumerate(ranked[:top], start=1)
    ]
    return {
        "currency": currency,
        "day": _span(answers, "day"),
        "month": _span(answers, "month"),
        "sales": {
            "revenue": day("revenue"),
            "orders": day("orders"),
            "average_deal_size": day("average_deal_size"),
            "win_rate": day("win_rate"),
        },
        "month_to_date": {
            "revenue": month("revenue"),
            "target": None if attainment is None else attainment["denominator"],
            "attainment": None if attainment is None else attainment["value"],
            "pacing": month("target_pacing"),
        },
        "leaderboard": leaderboard,
        "activity": {kpi: day(kpi) for kpi in ACTIVITY},
        "alerts": [dict(alert) for alert in alerts],
    }


# --- reading Redis ----------------------------------------------------------------------


async def read_answers(client: aioredis.Redis, settings: Settings) -> dict[Any, Any]:
    """The API answers of ``QUERIES``, all at the same stream time (one read of it)."""
    now = await stream_ms(client, settings.redis_prefix)
    # The API's own default for ``at`` is this stream time; passing it keeps every answer of
    # one snapshot in the same day and month even if stream time moves meanwhile.
    at = None if now is None else datetime.fromtimestamp(now / 1000, settings.zone).isoformat()
    keys = [(window, dim, kpi) for window, dim, kpis in QUERIES for kpi in kpis]
    replies = await asyncio.gather(
        *(query(client, settings, kpi, window, at, dim, None) for window, dim, kpi in keys),
        return_exceptions=True,
    )
    answers = {}
    for key, reply in zip(keys, replies, strict=True):
        if isinstance(reply, RedisError) or (
            isinstance(reply, BaseException) and not isinstance(reply, Exception)
        ):
            raise reply
        if isinstance(reply, Exception):  # one broken query leaves one value blank
            if key not in _failing:
                log.warning("wallboard: the API query %s failed: %r", key, reply)
            _failing.add(key)
            continue
        _failing.discard(key)
        answers[key] = reply
    return answers


_failing: set[tuple[str, str, str]] = set()  # queries already logged as failing


class SnapshotSource:
    """The current snapshot, read at most once per ``max_age`` seconds for all streams."""

    def __init__(
        self, read: Callable[[], Awaitable[dict[str, Any]]], max_age: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._read = read
        self._max_age = max_age
        self._clock = clock
        self._lock = asyncio.Lock()
        self._value: dict[str, Any] | None = None
        self._at = 0.0

    async def get(self) -> dict[str, Any]:
        async with self._lock:
            if self._value is None or self._clock() - self._at >= self._max_age:
                self._value = await self._read()
                self._at = self._clock()
            return self._value


# --- HTTP -------------------------------------------------------------------------------


def wallboard_html() -> bytes:
    return resources.files("streams.serving").joinpath("tv_static/wallboard.html").read_bytes()


def sse_event(name: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _aiohttp_request(request: Any) -> aioweb.BaseRequest:
    """The aiohttp request of a Faust view: Faust's aiohttp driver passes it as is."""
    raw = getattr(request, "_aiohttp_request", request)  # in case a Faust version wraps it
    if not isinstance(raw, aioweb.BaseRequest):
        raise TypeError(f"expected an aiohttp request, got {type(request).__name__}")
    return raw


def _gone(request: aioweb.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def stream_snapshots(
    request: aioweb.BaseRequest, source: SnapshotSource, stopping: Callable[[], bool],
    poll_s: float = POLL_S, heartbeat_s: float = HEARTBEAT_S,
) -> aioweb.StreamResponse:  # fmt: skip
    """Serve ``text/event-stream`` until the client goes or ``stopping()``."""
    response = aioweb.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache, no-store",
            "X-Accel-Buffering": "no",  # no buffering by a proxy in front
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        last: bytes | None = None
        failing = False
        quiet_since = time.monotonic()
        while not stopping() and not _gone(request):
            try:
                snapshot = await source.get()
            except RedisError as exc:
                if not failing:
                    log.warning("wallboard: reading Redis failed: %s", exc)
                    await response.write(sse_event("unavailable", {"error": str(exc)}))
                    quiet_since, last = time.monotonic(), None
                failing = True
            else:
                failing = False
                message = sse_event("snapshot", snapshot)
                if message != last:
                    await response.write(message)
                    quiet_since, last = time.monotonic(), message
            if time.monotonic() - quiet_since >= heartbeat_s:
                await response.write(b": keep-alive\n\n")
                quiet_since = time.monotonic()
            await asyncio.sleep(poll_s)
    except ConnectionError:  # the client went away between two writes
        log.debug("wallboard: stream client disconnected")
    return response


def register_tv(
    app: faust.App, settings: Settings, client: aioredis.Redis, reference: ReferenceCache
) -> None:
    """Add the wallboard views (``/tv``, ``/tv/stream``, ``/tv/snapshot``) to the worker; rep
    names come from the worker's reference cache (it follows ``ref.reps``), the alert banner
    from Alertmanager (``settings.alertmanager_url``)."""
    alert_source = AlertSource(settings.alertmanager_url)

    async def read() -> dict[str, Any]:
        reps = {rep_id: rep.name for rep_id, rep in reference.reps.items()}
        answers, alerts = await asyncio.gather(
            read_answers(client, settings), alert_source.firing()
        )
        snapshot = build_snapshot(answers, reps, settings.currency, alerts=alerts)
        # The month's revenue by day (GET /api/kpis/revenue/history): the page's trend strip.
        snapshot["trend"] = await read_trend(client, settings, snapshot["month"])
        return snapshot

    source = SnapshotSource(read)

    @app.page("/tv")
    async def tv_page(web: Any, request: Any) -> Any:
        return aioweb.Response(
            body=wallboard_html(), content_type="text/html", charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )  # fmt: skip

    @app.page("/tv/snapshot")
    async def tv_snapshot(web: Any, request: Any) -> Any:
        try:
            return web.json(await source.get())
        except RedisError as exc:
            return web.json({"error": f"Redis is unavailable: {exc}"}, status=503)

    @app.page("/tv/stream")
    async def tv_stream(web: Any, request: Any) -> Any:
        return await stream_snapshots(
            _aiohttp_request(request), source, lambda: bool(app.should_stop)
        )
