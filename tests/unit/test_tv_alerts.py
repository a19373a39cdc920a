"""The wallboard's alert banner: firing alerts read from an Alertmanager-shaped API on
127.0.0.1, and nothing (no error) when nothing answers there."""

from __future__ import annotations

import asyncio

from aiohttp import web

from streams.serving.tv import build_snapshot
from streams.serving.tv_alerts import AlertSource, banner_alerts
from streams.stack.ports import free_port

DIP = {
    "labels": {"alertname": "SalespulseWinRateDip", "severity": "warning", "dimension": "team",
               "key": "Lyon"},
    "annotations": {"summary": "Team Lyon: win rate 12%\n in the last hour vs 38% this month."},
    "status": {"state": "active"},
}  # fmt: skip
DOWN = {
    "labels": {"alertname": "SalespulseWorkerDown", "severity": "page"},
    "annotations": {"summary": "Salespulse worker w1 is down."},
    "status": {"state": "active"},
}
SUPPRESSED = dict(DIP, status={"state": "suppressed"})


def test_banner_keeps_active_alerts_most_severe_first_and_tidies_summaries() -> None:
    alerts = banner_alerts([DIP, SUPPRESSED, DOWN, {"labels": {}}, "junk"])
    assert [a["name"] for a in alerts] == ["SalespulseWorkerDown", "SalespulseWinRateDip"]
    assert alerts[1]["summary"] == "Team Lyon: win rate 12% in the last hour vs 38% this month."
    assert banner_alerts({"error": "not a list"}) == []


def test_firing_alerts_come_from_the_alertmanager_api() -> None:
    async def scenario() -> list[dict[str, str]]:
        app = web.Application()

        async def alerts(request: web.Request) -> web.Response:
            assert request.query["active"] == "true"
            assert request.query["silenced"] == "false"
            return web.json_response([DIP])

        app.router.add_get("/api/v2/alerts", alerts)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        source = AlertSource(f"http://127.0.0.1:{port}/")
        try:
            return await source.firing()
        finally:
            await source.close()
            await runner.cleanup()

    assert [a["name"] for a in asyncio.run(scenario())] == ["SalespulseWinRateDip"]


def test_no_banner_and_no_error_when_alertmanager_does_not_answer() -> None:
    async def scenario() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        nobody = AlertSource(f"http://127.0.0.1:{free_port()}")
        app = web.Application()

        async def unavailable(request: web.Request) -> web.Response:
            return web.Response(status=503)

        app.router.add_get("/api/v2/alerts", unavailable)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        broken = AlertSource(f"http://127.0.0.1:{port}")
        try:
            return await nobody.firing(), await broken.firing()
        finally:
            await nobody.close()
            await broken.close()
            await runner.cleanup()

    assert asyncio.run(scenario()) == ([], [])


def test_the_snapshot_carries_the_banner() -> None:
    snapshot = build_snapshot({}, {}, "EUR", alerts=banner_alerts([DIP]))
    assert snapshot["alerts"][0]["summary"].startswith("Team Lyon: win rate 12%")
    assert build_snapshot({}, {}, "EUR")["alerts"] == []
