"""streams.serving.tv: the wallboard snapshot from API answers, its cache, the event stream, the page."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError

import streams.serving.tv
from streams.serving.tv import (
    DAY_GLOBAL,
    MONTH_GLOBAL,
    MONTH_REP,
    QUERIES,
    SnapshotSource,
    build_snapshot,
    read_answers,
    stream_snapshots,
    wallboard_html,
)
from streams.settings import Settings

DAY = {
    "kind": "day",
    "start": "2026-04-14T00:00:00+02:00",
    "end": "2026-04-15T00:00:00+02:00",
    "tz": "Europe/Paris",
}
MONTH = {
    "kind": "month",
    "start": "2026-04-01T00:00:00+02:00",
    "end": "2026-05-01T00:00:00+02:00",
    "tz": "Europe/Paris",
}


def record(
    key: str, value: float | None, num: float | None = None, den: float | None = None
) -> dict[str, Any]:
    return {
        "key": key,
        "value": value,
        "numerator": value if num is None else num,
        "denominator": den,
        "final": False,
        "revision": 1,
    }


def answer(
    kpi: str,
    window: dict[str, str],
    values: list[dict[str, Any]],
    dim: str = "global",
    unit: str = "count",
) -> dict[str, Any]:
    ordered = sorted(values, key=lambda v: (v["value"] is None, -(v["value"] or 0), v["key"]))
    return {"kpi": kpi, "unit": unit, "dimension": dim, "window": window, "values": ordered}


def answers(
    day: dict[str, float | None], month: dict[str, Any], by_rep: dict[str, dict[str, float | None]]
) -> dict[tuple[str, str, str], dict[str, Any]]:
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for kpi in DAY_GLOBAL:
        values = [] if day.get(kpi) is None else [record("all", day[kpi])]
        out[("day", "global", kpi)] = answer(
            kpi, DAY, values, unit="CHF" if kpi == "revenue" else "count"
        )
    for kpi in MONTH_GLOBAL:
        given = month.get(kpi)
        values = (
            [] if given is None else [given if isinstance(given, dict) else record("all", given)]
        )
        out[("month", "global", kpi)] = answer(
            kpi, MONTH, values, unit="CHF" if kpi == "revenue" else "ratio"
        )
    for kpi in MONTH_REP:
        values = [record(rep, v) for rep, v in by_rep.get(kpi, {}).items()]
        out[("month", "rep", kpi)] = answer(kpi, MONTH, values, dim="rep")
    return out


def test_the_queries_cover_what_the_snapshot_reads() -> None:
    asked = {(w, d, k) for w, d, kpis in QUERIES for k in kpis}
    assert ("day", "global", "revenue") in asked
    assert ("month", "rep", "revenue") in asked
    assert len(asked) == len(DAY_GLOBAL) + len(MONTH_GLOBAL) + len(MONTH_REP)


def test_snapshot_takes_the_api_values_as_they_are() -> None:
    day = {"revenue": 12345.5, "orders": 7.0, "average_deal_size": 1763.64, "win_rate": 0.4375, "calls": 120.0,
           "emails": 80.0, "meetings": 9.0, "lead_response_seconds": 754.2, "leads_waiting": 3.0,
           "new_customers": 2.0, "churned_customers": 1.0}  # fmt: skip
    month = {
        "revenue": 250000.0,
        "target_attainment": record("all", 0.5, num=250000.0, den=500000.0),
        "target_pacing": 1.07,
    }
    snap = build_snapshot(answers(day, month, {}), {}, "CHF")
    assert snap["currency"] == "CHF"
    assert snap["day"] == {"start": DAY["start"], "end": DAY["end"], "tz": "Europe/Paris"}
    assert snap["month"]["start"] == MONTH["start"]
    assert snap["sales"] == {
        "revenue": 12345.5,
        "orders": 7.0,
        "average_deal_size": 1763.64,
        "win_rate": 0.4375,
    }
    assert snap["month_to_date"] == {
        "revenue": 250000.0,
        "target": 500000.0,
        "attainment": 0.5,
        "pacing": 1.07,
    }
    assert snap["activity"] == {
        k: day[k]
        for k in (
            "calls",
            "emails",
            "meetings",
            "lead_response_seconds",
            "leads_waiting",
            "new_customers",
            "churned_customers",
        )
    }
    assert snap["leaderboard"] == []
    orjson.dumps(snap)  # it goes out as JSON


def test_nothing_published_yet_gives_nulls_not_zeros() -> None:
    snap = build_snapshot(answers({}, {}, {}), {}, "EUR")
    assert set(snap["sales"].values()) == {None}
    assert set(snap["activity"].values()) == {None}
    assert snap["month_to_date"] == {
        "revenue": None,
        "target": None,
        "attainment": None,
        "pacing": None,
    }
    assert snap["day"] == {"start": DAY["start"], "end": DAY["end"], "tz": "Europe/Paris"}


def test_a_failed_query_leaves_its_value_blank() -> None:
    given = answers({"calls": 4.0, "revenue": 10.0}, {"revenue": 99.0}, {"revenue": {"r1": 99.0}})
    given[("day", "global", "leads_waiting")]["window"] = {
        "kind": "live",
        "start": "x",
        "end": "x",
        "tz": "Europe/Paris",
    }
    del given[("day", "global", "revenue")]
    del given[("month", "rep", "orders")]
    snap = build_snapshot(given, {}, "EUR")
    assert snap["sales"]["revenue"] is None
    assert snap["activity"]["calls"] == 4.0
    assert snap["day"]["start"] == DAY["start"]  # not the live window of leads_waiting
    assert snap["leaderboard"] == [
        {
            "rank": 1,
            "rep_id": "r1",
            "name": "r1",
            "revenue": 99.0,
            "orders": None,
            "attainment": None,
        }
    ]
    assert build_snapshot({}, {}, "EUR")["day"] is None


def test_leaderboard_top_reps_by_revenue_with_names() -> None:
    revenue: dict[str, float | None] = {f"r{i:02d}": 1000.0 * i for i in range(1, 15)}
    revenue["r99"] = None  # a rep with activity but no value: not ranked
    by_rep = {
        "revenue": revenue,
        "orders": {"r14": 5.0, "r13": 4.0},
        "target_attainment": {"r14": 1.2},
    }
    names = {"r14": "Ada Lovelace", "r12": "Grace Hopper"}
    board = build_snapshot(answers({}, {}, by_rep), names, "EUR")["leaderboard"]
    assert [row["rep_id"] for row in board] == [f"r{i:02d}" for i in range(14, 4, -1)]
    assert [row["rank"] for row in board] == list(range(1, 11))
    assert board[0] == {
        "rank": 1,
        "rep_id": "r14",
        "name": "Ada Lovelace",
        "revenue": 14000.0,
        "orders": 5.0,
        "attainment": 1.2,
    }
    assert board[1]["name"] == "r13"  # no name known: the id
    assert board[1]["attainment"] is None
    assert board[2]["name"] == "Grace Hopper"
    assert len(build_snapshot(answers({}, {}, by_rep), names, "EUR", top=3)["leaderboard"]) == 3


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_snapshot_source_reads_at_most_once_per_max_age() -> None:
    reads: list[int] = []
    failing = False

    async def read() -> dict[str, Any]:
        if failing:
            raise RedisConnectionError("down")
        reads.append(1)
        return {"n": len(reads)}

    clock = Clock()
    source = SnapshotSource(read, max_age=1.0, clock=clock)
    assert await source.get() == {"n": 1}
    clock.now += 0.5
    assert await asyncio.gather(source.get(), source.get()) == [{"n": 1}, {"n": 1}]
    clock.now += 0.5
    assert await source.get() == {"n": 2}
    clock.now += 1.0
    failing = True
    with pytest.raises(RedisConnectionError):
        await source.get()
    failing = False
    assert await source.get() == {"n": 3}


class Feed:
    """A snapshot source whose value the test changes."""

    def __init__(self) -> None:
        self.value: dict[str, Any] = {"v": 1}
        self.error: Exception | None = None

    async def get(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return self.value


async def events_of(response: Any, count: int, wait_s: float = 5.0) -> list[str]:
    """The next ``count`` SSE blocks (events or comments) of a streamed response."""
    blocks: list[str] = []
    buffer = b""
    async with asyncio.timeout(wait_s):
        while len(blocks) < count:
            buffer += await response.content.readany()
            while b"\n\n" in buffer and len(blocks) < count:
                block, buffer = buffer.split(b"\n\n", 1)
                blocks.append(block.decode())
    return blocks


class Client:
    """An aiohttp server run like Faust runs it (handlers are not cancelled when a client
    goes, unlike aiohttp's TestServer) and a client session to it."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def start(self) -> Client:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.session = aiohttp.ClientSession(f"http://{host}:{port}")
        return self

    async def get(self, path: str) -> aiohttp.ClientResponse:
        return await self.session.get(path)

    async def close(self) -> None:
        await self.session.close()
        await self.runner.cleanup()


async def sse_client(feed: Feed, stopping: list[bool], heartbeat_s: float = 30.0) -> Client:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream_snapshots(
            request, feed, lambda: stopping[0], poll_s=0.05, heartbeat_s=heartbeat_s
        )  # type: ignore[arg-type]

    app = web.Application()
    app.router.add_get("/tv/stream", handler)
    return await Client(app).start()


async def test_stream_sends_at_once_then_only_changes_then_stops() -> None:
    feed, stopping = Feed(), [False]
    client = await sse_client(feed, stopping)
    try:
        response = await client.get("/tv/stream")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"].startswith("no-cache")
        retry, first = await events_of(response, 2)
        assert retry == "retry: 2000"
        assert first == 'event: snapshot\ndata: {"v":1}'
        await asyncio.sleep(0.3)  # several polls of the same value: nothing sent
        feed.value = {"v": 2}
        assert await events_of(response, 1) == ['event: snapshot\ndata: {"v":2}']
        feed.error = RedisConnectionError("Redis is down")
        assert await events_of(response, 1) == [
            'event: unavailable\ndata: {"error":"Redis is down"}'
        ]
        await asyncio.sleep(0.2)  # still down: said once
        feed.error = None
        assert await events_of(response, 1) == ['event: snapshot\ndata: {"v":2}']
        stopping[0] = True  # the worker stops: the stream ends
        async with asyncio.timeout(5):
            rest = await response.content.read()
        assert rest == b""
    finally:
        await client.close()


async def test_stream_heartbeat_when_quiet() -> None:
    feed, stopping = Feed(), [False]
    client = await sse_client(feed, stopping, heartbeat_s=0.2)
    try:
        response = await client.get("/tv/stream")
        try:
            blocks = await events_of(response, 4)
        finally:
            # Released here: left to the garbage collector, its connection logged "Unclosed
            # connection" in whichever later test the collection happened to run.
            response.close()
        assert blocks[:2] == ["retry: 2000", 'event: snapshot\ndata: {"v":1}']
        assert blocks[2:] == [": keep-alive", ": keep-alive"]
    finally:
        stopping[0] = True
        await client.close()


async def test_client_leaving_ends_the_stream_without_error_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed, stopping = Feed(), [False]
    ended = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await stream_snapshots(request, feed, lambda: stopping[0], poll_s=0.02)  # type: ignore[arg-type]
        finally:
            ended.set()

    app = web.Application()
    app.router.add_get("/tv/stream", handler)
    client = await Client(app).start()
    caplog.set_level(logging.DEBUG)
    try:
        response = await client.get("/tv/stream")
        await events_of(response, 2)
        response.close()  # the TV goes away; nothing changes, so nothing is written
        async with asyncio.timeout(2):  # noticed by the next poll, not at the next heartbeat
            await ended.wait()
    finally:
        stopping[0] = True
        await client.close()
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == []


def test_page_is_self_contained_and_every_label_is_translated() -> None:
    page = wallboard_html().decode()
    assert "<script>" in page
    assert "<style>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), (
        "the page must not load anything from elsewhere"
    )
    keys = set(re.findall(r'data-t="([a-z_]+)"', page))
    assert {"revenue_today", "calls", "leads_waiting"} <= keys
    en = page[page.index("en: {") : page.index("fr: {")]
    fr = page[page.index("fr: {") : page.index("const params")]
    for block in (en, fr):
        defined = set(re.findall(r"\b([a-z_]+): ", block))
        assert (
            keys
            | {
                "title",
                "connecting",
                "disconnected",
                "unavailable",
                "updated",
                "no_sales",
                "no_target",
                "of_target",
            }
            <= defined
        )
    assert "Appels" in fr
    assert "Panier moyen" in fr


class FakeRedis:
    """The reads ``streams.serving.api.query`` makes, over a dict of hashes."""

    def __init__(
        self, stream_ms: int | None, hashes: dict[str, dict[str, bytes]], broken: bool = False
    ) -> None:
        self.stream_ms, self.hashes, self.broken = stream_ms, hashes, broken
        self.names: list[str] = []

    async def zscore(self, name: str, member: str) -> float | None:
        if self.broken:
            raise RedisConnectionError("Redis is down")
        return None if self.stream_ms is None else float(self.stream_ms)

    async def hgetall(self, name: str) -> dict[str, bytes]:
        self.names.append(name)
        return self.hashes.get(name, {})


def kpi_record(value: str) -> bytes:
    return orjson.dumps(
        {"value": value, "numerator": value, "denominator": None, "final": False, "revision": 1}
    )


async def test_read_answers_asks_the_api_for_one_day_and_month(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(redis_prefix="p:", business_tz="Europe/Paris", currency="EUR")
    now = datetime(2026, 4, 30, 23, 59, 59, 900_000, tzinfo=settings.zone)  # just before midnight
    day = int(datetime(2026, 4, 30, tzinfo=settings.zone).timestamp())
    month = int(datetime(2026, 4, 1, tzinfo=settings.zone).timestamp())
    client = FakeRedis(
        int(now.timestamp() * 1000),
        {
            f"p:kpi:revenue:day:{day}:global": {"all": kpi_record("12.5")},
            f"p:kpi:revenue:month:{month}:rep": {"r1": kpi_record("7"), "r2": kpi_record("9")},
        },
    )
    got = await read_answers(client, settings)  # type: ignore[arg-type]
    assert got[("day", "global", "revenue")]["values"][0]["value"] == 12.5
    assert [v["key"] for v in got[("month", "rep", "revenue")]["values"]] == ["r2", "r1"]
    days = {n.split(":")[4] for n in client.names if ":day:" in n}
    months = {n.split(":")[4] for n in client.names if ":month:" in n}
    assert days == {str(day)}
    assert months == {str(month)}
    snap = build_snapshot(got, {"r2": "Bea"}, settings.currency)
    assert snap["sales"]["revenue"] == 12.5
    assert snap["leaderboard"][0]["name"] == "Bea"

    with pytest.raises(RedisConnectionError):  # Redis down: no snapshot at all
        await read_answers(FakeRedis(None, {}, broken=True), settings)  # type: ignore[arg-type]

    real = streams.serving.tv.query

    async def calls_broken(client: Any, settings: Settings, kpi: str, *args: Any) -> Any:
        if kpi == "calls":
            raise ValueError("a bug in one query")
        return await real(client, settings, kpi, *args)

    monkeypatch.setattr(streams.serving.tv, "query", calls_broken)
    got = await read_answers(client, settings)  # type: ignore[arg-type]
    assert ("day", "global", "calls") not in got  # one broken query: one blank value
    assert got[("day", "global", "revenue")]["values"][0]["value"] == 12.5
