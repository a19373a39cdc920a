"""The TV wallboard (GET /tv) of a real worker, in headless Chromium driven over DevTools.

The demo's floor (``streams.cli.demo.demo_floor``: what ``make demo`` runs) of today feeds the
worker. The page must read as a real team's from the first minutes (pacing on the month's
target and the win rate in the simulator's bands, human names on the leaderboard), show the
values of the API, update without a reload as more events arrive, speak French with
``?lang=fr`` and say "disconnected" when the worker goes away. A second worker, fed the
``conversion-dip`` incident and scraped by the session's Prometheus (which sends to its
Alertmanager), shows the alert's banner.

Screenshots (1920x1080) are kept in the test's tmp dir; with
``SALESPULSE_UPDATE_WALLBOARD_PNG=1`` the sales screen of the demo floor, taken when its
numbers were checked, is also copied to docs/wallboard.png (the README's picture), so that a
normal run leaves the checkout unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from streams.cli.demo import demo_floor
from streams.settings import Settings
from streams.simulator import funnel, history
from streams.simulator.incidents import IncidentKind, IncidentSpec
from streams.stack.process import ProcessRecord, log_tail, spawn
from streams.stack.prometheus import register_target
from tests.kpi_tools import (
    Message,
    event_time,
    floor_messages,
    produce,
    stream_time_ms,
)
from tests.support import (
    REPO,
    Services,
    eventually,
    isolated_settings,
    running_worker,
    worker_metric,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="the wallboard test needs Chromium: apt-get install chromium",
)
DOCS_PNG = REPO / "docs" / "wallboard.png"
UPDATE_DOCS_PNG = os.environ.get("SALESPULSE_UPDATE_WALLBOARD_PNG") == "1"


# --- a simulated floor of today ----------------------------------------------------------


def floor_of_today(settings: Settings, events: int) -> tuple[list[Message], list[Message]]:
    """(reference records, event messages) of the demo's floor from now, until midnight: the
    quarter so far first (sent at once, as the demo's simulator does), then the live floor."""
    now = datetime.now(settings.zone)
    midnight = datetime.combine(now.date() + timedelta(days=1), time_of_day(), settings.zone)
    return floor_messages(settings, demo_floor(), now, events=events, until=midnight)


def rep_names(reference: list[Message]) -> dict[str, str]:
    return {
        key.decode(): orjson.loads(value)["name"]
        for topic, key, value in reference
        if topic == "ref.reps"
    }


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return orjson.loads(response.read())


# --- Chromium over the DevTools protocol (aiohttp websocket) -----------------------------


class Browser:
    """Headless Chromium and a DevTools connection, driven from a thread of its own."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        profile = home / "profile"
        profile.mkdir(parents=True)
        assert CHROMIUM is not None
        self.process: ProcessRecord = spawn(
            [
                CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--hide-scrollbars", "--mute-audio",
                "--remote-debugging-port=0", f"--user-data-dir={profile}",
                "--window-size=1920,1080", "about:blank",
            ],
            home / "chromium.log", cwd=home, die_with_parent=True,
        )  # fmt: skip
        port_file = profile / "DevToolsActivePort"
        eventually(lambda: self._alive_or_fail() and port_file.exists(), timeout=30)
        port, path = port_file.read_text().split()[:2]
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.targets: list[str] = []  # the pages open
        self.ws: aiohttp.ClientWebSocketResponse = self.call(self._connect(port, path))

    def _alive_or_fail(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"chromium exited:\n{log_tail(self.home / 'chromium.log', 30)}")
        return True

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    async def _connect(self, port: str, path: str) -> aiohttp.ClientWebSocketResponse:
        self.session = aiohttp.ClientSession()
        ws = await self.session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        self.reader = asyncio.create_task(self._read(ws))
        return ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            data = json.loads(message.data)
            future = self.pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)

    async def _send(self, method: str, params: dict[str, Any], session: str | None) -> Any:
        ident = next(self.ids)
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise AssertionError(f"DevTools {method} failed: {reply['error']}")
        return reply["result"]

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> Any:
        return self.call(self._send(method, params or {}, session))

    def open(self, url: str) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.targets.append(target)
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False},
        )
        page.send("Page.enable")
        page.send("Page.navigate", {"url": url})
        return page

    def close_pages(self) -> None:
        """Close every page: each holds a live stream (EventSource) to its worker, and
        Chromium opens at most 6 connections per host, so a seventh page of the same
        worker would wait for a free one forever (its navigation never answered)."""
        targets, self.targets = self.targets, []
        for target in targets:
            self.send("Target.closeTarget", {"targetId": target})

    def close(self) -> None:
        async def shut() -> None:
            await self.ws.close()
            await self.session.close()

        with contextlib.suppress(Exception):
            self.call(shut(), timeout=10)
        self.process.stop(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@dataclass
class Page:
    browser: Browser
    session: str

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.browser.send(method, params, self.session)

    def eval(self, expression: str) -> Any:
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in reply:
            return None  # e.g. the page is not loaded yet
        return reply["result"].get("value")

    def value(self, field: str) -> dict[str, Any] | None:
        """The raw value, the text and the font size (px) of a ``[data-field]`` element."""
        return self.eval(
            f"""(() => {{ const el = document.querySelector('[data-field="{field}"]');
            return el && {{raw: el.dataset.value, text: el.textContent,
                           px: parseFloat(getComputedStyle(el).fontSize)}}; }})()"""
        )

    def status(self) -> dict[str, Any] | None:
        return self.eval(
            "(() => { const el = document.getElementById('status');"
            " return el && {state: el.dataset.state, text: el.textContent}; })()"
        )

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


# --- the fixture: one worker, one browser, for the whole module ---------------------------


@dataclass
class Wallboard:
    settings: Settings
    base: str
    worker: ProcessRecord
    browser: Browser
    names: dict[str, str]
    later: list[Message]  # events sent by the test that checks live updates
    shots: Path


@pytest.fixture(scope="module")
def wallboard(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wallboard]:
    home = tmp_path_factory.mktemp("wallboard")
    settings = isolated_settings(services, home)
    today = datetime.now(settings.zone).date()  # the floor's day
    reference, stream = floor_of_today(settings, events=1500)
    first, later = stream[:900], stream[900:]
    produce(settings, reference + first)
    with running_worker(settings, home / "worker.log") as worker:
        base = f"http://127.0.0.1:{settings.web_port}"
        try:
            urllib.request.urlopen(f"{base}/tv", timeout=10).close()
        except urllib.error.HTTPError as exc:
            raise AssertionError(
                f"GET /tv answered {exc.code}: is register_tv(app, settings, redis_client) "
                "called in streams/app.py (next to register_api)?"
            ) from exc

        # Wait for the first events to be counted before opening any page, and for stream
        # time to be known and on the floor's day: while the engine replays the quarter so
        # far, stream time (so the screen's "today") is on an earlier day of it, whose revenue
        # a test would take for today's (and today's, once reached, is lower).
        def counted_today() -> bool:
            ms = stream_time_ms(settings)
            on_the_day = (
                ms is not None and datetime.fromtimestamp(ms / 1000, settings.zone).date() == today
            )
            return on_the_day and (get_json(f"{base}/tv/snapshot")["sales"]["revenue"] or 0) > 0

        eventually(counted_today, timeout=120)
        browser = Browser(home / "browser")
        try:
            yield Wallboard(settings, base, worker, browser, rep_names(reference), later, home)
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def _pages_closed_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "wallboard" in request.fixturenames:
        request.getfixturevalue("wallboard").browser.close_pages()


def wait_live(page: Page) -> dict[str, Any]:
    return eventually(lambda: (s := page.status()) and s["state"] == "live" and s, timeout=30)


# --- the tests ---------------------------------------------------------------------------


def test_snapshot_equals_the_api(wallboard: Wallboard) -> None:
    base = wallboard.base
    with urllib.request.urlopen(f"{base}/tv", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/html")
        assert b"EventSource" in response.read()

    def api(kpi: str, window: str, by: str = "global") -> Any:
        try:
            return get_json(f"{base}/api/kpis/{kpi}?window={window}&by={by}")
        except urllib.error.HTTPError as exc:  # a broken query: the wallboard leaves it blank
            if exc.code != 500:
                raise
            return {"values": [], "failed": True}

    def agree() -> list[str]:
        snap = get_json(f"{base}/tv/snapshot")
        day = {
            kpi: api(kpi, "day")
            for kpi in (
                "revenue",
                "orders",
                "win_rate",
                "calls",
                "lead_response_seconds",
                "leads_waiting",
            )
        }
        top = api("revenue", "month", "rep")["values"][:10]
        target = api("target_attainment", "month")["values"]
        problems = []
        for kpi, answer in day.items():
            section = "sales" if kpi in snap["sales"] else "activity"
            want = next((v["value"] for v in answer["values"] if v["key"] == "all"), None)
            if snap[section][kpi] != want:
                problems.append(f"{kpi}: wallboard {snap[section][kpi]} != API {want}")
        if day["revenue"].get("failed"):
            problems.append("GET /api/kpis/revenue failed")
            return problems
        if snap["currency"] != day["revenue"]["unit"]:
            problems.append(f"currency {snap['currency']} != {day['revenue']['unit']}")
        if snap["day"]["start"] != day["revenue"]["window"]["start"]:
            problems.append(f"day {snap['day']} != {day['revenue']['window']}")
        board = [(r["rep_id"], r["revenue"]) for r in snap["leaderboard"]]
        if board != [(v["key"], v["value"]) for v in top if v["value"] is not None]:
            problems.append(f"leaderboard {board} != API {top}")
        if target and snap["month_to_date"]["target"] != target[0]["denominator"]:
            problems.append(f"target {snap['month_to_date']} != API {target}")
        return problems

    # The engine may still be publishing: wait for a moment where both agree.
    last: list[str] = []

    def settled() -> bool:
        last[:] = agree()
        snap = get_json(f"{base}/tv/snapshot")
        if not (snap["sales"]["orders"] and snap["activity"]["calls"] and snap["leaderboard"]):
            last.append(f"not everything counted yet: {snap}")
        return not last

    with contextlib.suppress(AssertionError):
        eventually(settled, timeout=90, interval=1.0)
    assert not last, "\n".join(last)
    snap = get_json(f"{base}/tv/snapshot")
    assert snap["month_to_date"]["target"], "the simulator sends monthly targets"


def test_the_demo_floor_reads_as_a_real_team(wallboard: Wallboard) -> None:
    """What issue 14 found absurd: pacing 0 % in red, a win rate of 100 %, rep ids."""
    page = wallboard.browser.open(f"{wallboard.base}/tv?screen=1")
    wait_live(page)
    pacing = eventually(
        lambda: (v := page.value("month_to_date.pacing")) and v["raw"] and v, timeout=60
    )
    win_rate = eventually(lambda: (v := page.value("sales.win_rate")) and v["raw"] and v)
    low, high = history.PACING_BAND
    if datetime.now(wallboard.settings.zone).day > 1:
        # The README's band holds from the 2nd of a month: pacing counts calendar time from
        # midnight, and early on the 1st the floor has booked only minutes of it.
        assert low <= float(pacing["raw"]) <= high, f"pacing {pacing} outside {low}-{high}"
    expected = funnel.expected_win_rate()
    spread = history.WIN_RATE_SPREAD
    assert 0 < float(win_rate["raw"]) < 1, f"win rate {win_rate}: no loss in the first minutes"
    assert abs(float(win_rate["raw"]) - expected) <= spread, (
        f"win rate {win_rate} not within {spread:.0%} of the floor's {expected:.0%}"
    )
    assert win_rate["text"].endswith("%"), win_rate
    target = page.eval("document.getElementById('target-line').textContent")
    assert re.fullmatch(r"\d+% of €[\d,]+", target), target  # e.g. "7% of €33,506,287,976"
    assert not target.startswith("0%"), target
    shot = page.screenshot(wallboard.shots / "wallboard-demo-floor-en.png")
    assert png_size(shot) == (1920, 1080)
    if UPDATE_DOCS_PNG:
        shutil.copyfile(shot, DOCS_PNG)


def test_values_change_on_screen_as_events_arrive(wallboard: Wallboard) -> None:
    page = wallboard.browser.open(f"{wallboard.base}/tv?screen=1")
    status = wait_live(page)
    assert status["text"].startswith("updated "), status
    field = "sales.revenue"
    before = eventually(lambda: (v := page.value(field)) and v["raw"] and v, timeout=30)
    assert float(before["raw"]) > 0
    assert before["text"].startswith("€"), before
    assert any(c.isdigit() for c in before["text"]), before
    assert before["px"] >= 120, f"revenue at {before['px']}px: not readable across a room"
    for other in ("sales.orders", "sales.average_deal_size", "sales.win_rate"):
        shown = page.value(other)
        assert shown, other
        assert shown["text"] != "\u2013", (other, shown)  # a dash: no value
        assert shown["px"] >= 120, (other, shown)
    pacing = page.value("month_to_date.pacing")  # null until the engine knows stream time
    assert pacing, "no pacing element"
    assert pacing["px"] >= 120, pacing
    page.eval("window.sameDocument = true")
    shot = page.screenshot(wallboard.shots / "wallboard-sales-en-before.png")
    assert png_size(shot) == (1920, 1080)

    produce(wallboard.settings, wallboard.later)
    try:
        after = eventually(
            lambda: (
                (v := page.value(field)) and v["raw"] and float(v["raw"]) > float(before["raw"])
                and v
            ),
            timeout=120,
        )  # fmt: skip
    except AssertionError as exc:
        snapshot = get_json(f"{wallboard.base}/tv/snapshot")
        raise AssertionError(
            f"{exc}: revenue on screen {page.value(field)} (before: {before}), status "
            f"{page.status()}; the snapshot says {snapshot['sales']['revenue']} for the day "
            f"starting {snapshot['day']['start']}"
        ) from exc
    assert after["text"] != before["text"]
    assert page.eval("window.sameDocument === true"), "the page reloaded instead of updating"
    # What the page shows is what the snapshot (and so the API) says, once the engine is quiet.
    eventually(
        lambda: float(page.value(field)["raw"]) == get_json(f"{wallboard.base}/tv/snapshot")["sales"]["revenue"],
        timeout=60, interval=1.0,
    )  # fmt: skip
    shot = page.screenshot(wallboard.shots / "wallboard-sales-en.png")
    assert png_size(shot) == (1920, 1080)


def test_leaderboard_shows_rep_names(wallboard: Wallboard) -> None:
    page = wallboard.browser.open(f"{wallboard.base}/tv?screen=2")
    wait_live(page)
    top = get_json(f"{wallboard.base}/api/kpis/revenue?window=month&by=rep")["values"]
    assert top, "no revenue by rep this month"
    rows = eventually(
        lambda: page.eval(
            "[...document.querySelectorAll('#leaderboard tr')].map(r => ({rep: r.dataset.rep,"
            " cells: [...r.cells].map(c => c.textContent)}))"
        ),
        timeout=30,
    )
    assert 1 <= len(rows) <= 10
    leader = rows[0]
    assert leader["cells"][0] == "1"
    assert leader["cells"][1] == wallboard.names[leader["rep"]], leader
    assert leader["rep"] not in leader["cells"][1]
    assert all(row["cells"][1] in wallboard.names.values() for row in rows), rows
    human = re.compile(r"[^\W\d_]+(?:[ '-][^\W\d_]+)+")  # "Gaëlle Roux": letters, 2+ words
    assert all(human.fullmatch(row["cells"][1]) for row in rows), rows
    assert page.eval("document.getElementById('title').textContent") == "Top reps this month"
    page.screenshot(wallboard.shots / "wallboard-leaderboard-en.png")


def test_french_labels_and_numbers(wallboard: Wallboard) -> None:
    page = wallboard.browser.open(f"{wallboard.base}/tv?lang=fr&screen=3")
    status = wait_live(page)
    assert status["text"].startswith("mis à jour à "), status
    assert page.eval("document.documentElement.lang") == "fr"
    text = page.eval("document.body.innerText")
    for label in (
        "Activité du jour",
        "Appels",
        "E-mails",
        "Rendez-vous",
        "Nouveaux clients",
        "Délai de réponse aux prospects",
        "Prospects en attente",
        "Clients perdus",
    ):
        assert label in text, f"{label!r} missing from:\n{text}"
    for english in ("Calls", "Meetings", "New customers", "Leads waiting", "updated"):
        assert english not in text, f"English {english!r} left in:\n{text}"
    calls = page.value("activity.calls")
    assert calls, "no calls element"
    assert calls["px"] >= 120, calls
    page.screenshot(wallboard.shots / "wallboard-activity-fr.png")

    sales = wallboard.browser.open(f"{wallboard.base}/tv?lang=fr&screen=1")
    wait_live(sales)
    revenue = eventually(lambda: (v := sales.value("sales.revenue")) and v["raw"] and v, timeout=30)
    # fr-FR: "12 345 €", digits grouped by a (narrow) no-break space, the sign after.
    assert revenue["text"].endswith("€"), revenue
    assert not revenue["text"].startswith("€"), revenue
    if float(revenue["raw"]) >= 1000:
        assert "\u202f" in revenue["text"] or "\u00a0" in revenue["text"][:-2], revenue
    assert "Chiffre d\u2019affaires du jour" in sales.eval("document.body.innerText")


def test_the_month_trend_is_the_history_api(wallboard: Wallboard) -> None:
    """The strip of the month's revenue by day is GET /api/kpis/revenue/history, day by day."""
    base = wallboard.base

    def agree() -> list[str]:
        snap = get_json(f"{base}/tv/snapshot")
        first = datetime.fromisoformat(snap["month"]["start"]).date()
        last = datetime.fromisoformat(snap["month"]["end"]).date() - timedelta(days=1)
        answer = get_json(
            f"{base}/api/kpis/revenue/history?window=day&from={first}&to={last}&key=all"
        )
        want = [
            {"date": p["label"], "value": p["values"][0]["value"] if p["values"] else None}
            for p in answer["points"]
        ]
        today = snap["day"]["start"][:10]
        shown = {d["date"]: d["value"] for d in snap["trend"]["days"]}
        problems = []
        if snap["trend"]["days"] != want:
            problems.append(f"trend {snap['trend']['days']} != history {want}")
        if not shown.get(today) or shown[today] != snap["sales"]["revenue"]:
            problems.append(f"today {today}: {shown.get(today)} != {snap['sales']['revenue']}")
        return problems

    last: list[str] = []

    def agreed() -> bool:
        last[:] = agree()
        return not last

    with contextlib.suppress(AssertionError):
        eventually(agreed, timeout=60, interval=1.0)
    assert not last, "\n".join(last)
    snap = get_json(f"{base}/tv/snapshot")
    days = snap["trend"]["days"]
    assert 28 <= len(days) <= 31
    assert days[0]["date"] == snap["month"]["start"][:10]

    page = wallboard.browser.open(f"{base}/tv?screen=1")
    wait_live(page)
    bars = eventually(
        lambda: page.eval(
            "[...document.querySelectorAll('#trend i')].map(b => ({date: b.dataset.date,"
            " value: b.dataset.value, cls: b.className, px: b.getBoundingClientRect().height}))"
        ),
        timeout=30,
    )
    assert [b["date"] for b in bars] == [d["date"] for d in days]
    today = [b for b in bars if b["cls"] == "today"]
    assert len(today) == 1, bars
    assert today[0]["date"] == snap["day"]["start"][:10]
    assert float(today[0]["value"]) > 0
    # Each bar's height is its share of the month's best day (today's is short at night:
    # the floor's day has only begun).
    strip = page.eval("document.getElementById('trend').getBoundingClientRect().height")
    top = max(float(b["value"]) for b in bars if b["value"])
    for bar in bars:
        if bar["value"] and float(bar["value"]) > 0:
            share = float(bar["value"]) / top
            assert bar["px"] == pytest.approx(max(strip * share, 0.0025 * 1920), abs=1.5), (
                f"{bar['date']}: {bar['px']}px for {share:.0%} of a {strip}px strip"
            )
    assert "This month, day by day" in page.eval("document.body.innerText")
    page.screenshot(wallboard.shots / "wallboard-trend-en.png")


DIP_ALERT = "SalespulseWinRateDip"
BANNER_SHOWN = """(() => { const b = document.getElementById('alerts');
    return b && !b.hidden && {text: b.textContent, px: parseFloat(getComputedStyle(b).fontSize),
                              width: b.getBoundingClientRect().width};
})()"""


def firing_in_alertmanager(url: str, name: str) -> list[dict[str, Any]]:
    alerts = get_json(f"{url}/api/v2/alerts?active=true&silenced=false&inhibited=false")
    return [a for a in alerts if a["labels"].get("alertname") == name]


@pytest.mark.alert_rule_wait
@pytest.mark.timeout(900)
def test_alert_banner_during_a_conversion_dip(
    services: Services, wallboard: Wallboard, tmp_path: Path
) -> None:
    """The demo floor's ``--incident conversion-dip``, through the session's Prometheus and
    Alertmanager, on screen.

    The alert compares the last hour of event time with the month, so live it pages once the
    dip has filled most of an hour: too long for a test. Here the demo floor (its always-open
    clock, going-concern history, names and targets; at 1 message a second, not 20) of the two
    hours before now, its dip from 45 minutes in, is sent at once; the worker is then idle and
    its last hour is the dip's.
    """
    if services.run_dir is None or services.alertmanager_url is None:
        pytest.skip("external Prometheus/Alertmanager: the test cannot add a scrape target")
    alertmanager = services.alertmanager_url
    # A dip alert of an earlier test resolves once its worker is no longer scraped.
    eventually(lambda: not firing_in_alertmanager(alertmanager, DIP_ALERT), timeout=120)
    settings = isolated_settings(services, tmp_path, idle_close_s=5.0)
    now = datetime.now(settings.zone)
    dip = IncidentSpec(IncidentKind.CONVERSION_DIP, after=timedelta(minutes=45))
    reference, stream = floor_messages(
        settings, demo_floor(rate=1.0, incidents=(dip,)), now - timedelta(hours=2), until=now
    )
    messages = reference + stream
    last = max(t for _, _, v in messages if (t := event_time(v)) is not None)
    with running_worker(settings, tmp_path / "worker.log"):
        address = f"127.0.0.1:{settings.web_port}"
        target = register_target(services.run_dir, f"wallboard-dip-{settings.web_port}", address)
        try:
            produce(settings, messages)
            eventually(
                lambda: worker_metric(settings.web_port, "salespulse_stream_time_seconds")
                >= last.timestamp() - 120,
                timeout=400, interval=2,
            )  # fmt: skip
            page = wallboard.browser.open(f"http://{address}/tv?screen=1")
            wait_live(page)
            if not firing_in_alertmanager(alertmanager, DIP_ALERT):
                assert not page.eval(BANNER_SHOWN), "a banner while no alert fires"
            # Firing after the rule's `for` (5 minutes), then sent on to Alertmanager.
            banner = eventually(
                lambda: (b := page.eval(BANNER_SHOWN)) and "The whole floor" in b["text"] and b,
                timeout=5 * 60 + 180, interval=2,
            )  # fmt: skip
            (alert,) = [
                a for a in firing_in_alertmanager(alertmanager, DIP_ALERT)
                if a["labels"].get("dimension") == "global"
            ]  # fmt: skip
            # It takes the header's free space: the tiles keep their room (none overflows).
            clipped = page.eval(
                "[...document.querySelectorAll('#s1 .tile')]"
                ".filter(t => t.scrollHeight > t.clientHeight + 1).map(t => t.className)"
            )
            in_header = page.eval("!!document.querySelector('header #alerts')")
            page.screenshot(wallboard.shots / "wallboard-alert-banner-en.png")
        finally:
            target.unlink(missing_ok=True)
    summary = " ".join(alert["annotations"]["summary"].split())
    assert re.fullmatch(
        r"The whole floor: win rate [\d.]+% in the last hour vs [\d.]+% this month\.", summary
    ), summary
    assert banner["text"].startswith("\u26a0 "), banner
    assert summary in banner["text"], banner
    assert banner["px"] >= 18, f"banner at {banner['px']}px"
    assert banner["width"] >= 0.6 * 1920, f"banner {banner['width']}px wide: its sentence is cut"
    assert in_header
    assert clipped == [], f"tiles cut off under the banner: {clipped}"


def test_disconnected_shows_when_the_worker_goes(wallboard: Wallboard) -> None:
    page = wallboard.browser.open(f"{wallboard.base}/tv?screen=1")
    wait_live(page)
    started = time.monotonic()
    wallboard.worker.stop(timeout=30)  # SIGTERM; the open stream must not hold it up
    stopped_in = time.monotonic() - started
    assert not wallboard.worker.alive()
    assert stopped_in < 25, f"the worker took {stopped_in:.0f} s to stop with a wallboard open"
    status = eventually(
        lambda: (s := page.status()) and s["state"] == "disconnected" and s, timeout=30
    )
    assert status["text"] == "disconnected"
    assert page.eval("document.body.classList.contains('stale')")
    assert float(page.value("sales.revenue")["raw"]) > 0, "the last values stay on screen"
    page.screenshot(wallboard.shots / "wallboard-disconnected-en.png")
