"""HTTP access on real workers (streams.serving.web_access, streams.serving.readiness).

A worker with ``SALESPULSE_WEB_TOKEN`` and ``SALESPULSE_WEB_TV_TOKEN`` (on 0.0.0.0): /api and
/metrics want the token as a Bearer header, /tv and what the page reads take the read-only
token in the URL (which opens nothing else; a real Chromium's wallboard goes live with it),
/health and /ready are open, /ready is 200 once
caught up, and the session's real Prometheus scrapes it. A worker without a token asked for
0.0.0.0 listens on 127.0.0.1 only and says so; with its Redis on a closed port it stays up and
/ready is 503 naming Redis.
"""

from __future__ import annotations

import secrets
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.settings import Settings
from streams.stack.ports import free_port
from streams.stack.prometheus import register_target
from tests.integration.test_tv_wallboard import CHROMIUM, Browser, wait_live
from tests.support import Services, eventually, isolated_settings, metric, running_worker

TV_TOKEN = secrets.token_urlsafe(24)

Answer = tuple[int, bytes]


def get(
    settings: Settings, path: str, *, bearer: str | None = None, token: str | None = None
) -> Answer:
    """(status, body) of ``GET path`` on the worker; ``token`` goes in the URL as ?token=."""
    query = "" if token is None else "?" + urllib.parse.urlencode({"token": token})
    headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}
    request = urllib.request.Request(
        f"http://127.0.0.1:{settings.web_port}{path}{query}", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def error_of(answer: Answer) -> str:
    status, body = answer
    assert status == 401, answer
    return str(orjson.loads(body)["error"])


def listening_on(port: int) -> set[str]:
    """The IPv4 addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    hosts = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        host_hex, port_hex = fields[1].split(":")
        if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            hosts.add(socket.inet_ntoa(bytes.fromhex(host_hex)[::-1]))
    return hosts


@pytest.fixture(scope="module")
def guarded(
    services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Path]]:
    """A worker with both tokens, asked to listen on every address; the token is the one the
    session's Prometheus sends, when the session started it."""
    home = tmp_path_factory.mktemp("web-access")
    settings = isolated_settings(
        services, home, web_host="0.0.0.0", web_tv_token=TV_TOKEN,
        web_token=services.web_token or secrets.token_urlsafe(24),
    )  # fmt: skip
    with running_worker(settings, home / "worker.log"):
        yield settings, home / "worker.log"


def token_of(settings: Settings) -> str:
    assert settings.web_token is not None
    return settings.web_token.get_secret_value()


def test_api_wants_the_token_as_a_bearer_header(guarded: tuple[Settings, Path]) -> None:
    settings, _ = guarded
    assert "SALESPULSE_WEB_TOKEN" in error_of(get(settings, "/api/kpis"))
    assert "wrong token" in error_of(get(settings, "/api/kpis", bearer=token_of(settings) + "x"))
    assert "/tv only" in error_of(get(settings, "/api/kpis/revenue", token=TV_TOKEN))
    error_of(get(settings, "/api/kpis", token=token_of(settings)))  # never in a URL
    status, body = get(settings, "/api/kpis", bearer=token_of(settings))
    assert status == 200, body
    assert "revenue" in {kpi["id"] for kpi in orjson.loads(body)["kpis"]}


def test_tv_takes_the_read_only_token_in_its_url(guarded: tuple[Settings, Path]) -> None:
    settings, _ = guarded
    assert "SALESPULSE_WEB_TV_TOKEN" in error_of(get(settings, "/tv"))
    error_of(get(settings, "/tv", token=TV_TOKEN[:-1]))
    error_of(get(settings, "/tv/snapshot"))
    status, page = get(settings, "/tv", token=TV_TOKEN)
    assert status == 200
    assert b'params.get("token")' in page  # the page passes it on to its stream
    assert get(settings, "/tv", bearer=token_of(settings))[0] == 200
    status, body = get(settings, "/tv/snapshot", token=TV_TOKEN)
    assert status == 200, body
    assert "currency" in orjson.loads(body)
    url = f"http://127.0.0.1:{settings.web_port}/tv/stream?token={TV_TOKEN}"
    with urllib.request.urlopen(url, timeout=30) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.readline() == b"retry: 2000\n"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url.replace(TV_TOKEN, "nope" * 6), timeout=30)
    assert refused.value.code == 401


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium")
def test_a_wall_screen_with_the_read_only_token_goes_live(
    guarded: tuple[Settings, Path], tmp_path: Path
) -> None:
    """A real browser opens /tv?token=...: the page's own stream request must carry it."""
    settings, _ = guarded
    browser = Browser(tmp_path)
    try:
        page = browser.open(f"http://127.0.0.1:{settings.web_port}/tv?token={TV_TOKEN}")
        assert wait_live(page)["text"].startswith("updated ")
    finally:
        browser.close()


def test_metrics_want_the_full_token(guarded: tuple[Settings, Path]) -> None:
    settings, _ = guarded
    error_of(get(settings, "/metrics"))
    assert "/tv only" in error_of(get(settings, "/metrics", token=TV_TOKEN))
    status, body = get(settings, "/metrics", bearer=token_of(settings))
    assert status == 200
    assert metric(body, "salespulse_assigned_partitions") > 0


def test_health_and_ready_need_no_token(guarded: tuple[Settings, Path]) -> None:
    settings, _ = guarded
    assert get(settings, "/health") == (200, b'{"status":"alive"}')

    def ready() -> dict[str, Any] | None:
        status, body = get(settings, "/ready")
        answer: dict[str, Any] = orjson.loads(body)
        assert status == (200 if answer["ready"] else 503), answer
        return answer if status == 200 else None

    answer = eventually(ready, timeout=60)
    assert answer["assigned_partitions"] > 0
    assert answer["behind"] <= settings.ready_max_lag


def test_with_a_token_it_listens_where_asked_and_says_a_token_is_needed(
    guarded: tuple[Settings, Path],
) -> None:
    settings, log = guarded
    assert listening_on(settings.web_port) == {"0.0.0.0"}
    said = log.read_text()
    assert f"web server on http://0.0.0.0:{settings.web_port}: a token is required" in said
    assert "wall screens: " in said


def test_the_stack_prometheus_scrapes_the_guarded_worker(
    services: Services, guarded: tuple[Settings, Path]
) -> None:
    if services.web_token is None or services.run_dir is None or not services.prometheus_url:
        pytest.skip("external Prometheus (SALESPULSE_PROMETHEUS_URL): it has no token to send")
    settings, _ = guarded
    instance = f"127.0.0.1:{settings.web_port}"
    target = register_target(services.run_dir, f"test-{settings.web_port}", instance)

    def scraped() -> dict[str, Any] | None:
        url = f"{services.prometheus_url}/api/v1/targets?state=active"
        with urllib.request.urlopen(url, timeout=30) as response:
            targets = orjson.loads(response.read())["data"]["activeTargets"]
        ours = [t for t in targets if t["labels"].get("instance") == instance]
        return ours[0] if ours and ours[0]["health"] != "unknown" else None

    try:
        state = eventually(scraped, timeout=60, interval=1)
        assert (state["health"], state["lastError"]) == ("up", ""), state
    finally:
        target.unlink(missing_ok=True)


def test_without_a_token_and_without_redis_it_listens_on_loopback_and_is_not_ready(
    services: Services, tmp_path: Path
) -> None:
    """Asked for 0.0.0.0 without a token, with its Redis on a closed port."""
    settings = isolated_settings(
        services, tmp_path, web_host="0.0.0.0", redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    log = tmp_path / "worker.log"
    with running_worker(settings, log) as worker:
        assert listening_on(settings.web_port) == {"127.0.0.1"}
        assert "SALESPULSE_WEB_HOST=0.0.0.0 is ignored without a token" in log.read_text()
        assert "Set SALESPULSE_WEB_TOKEN" in log.read_text()
        assert get(settings, "/metrics")[0] == 200  # no token: open, on this machine

        def redis_named() -> list[str]:
            status, body = get(settings, "/ready")
            assert status == 503, body
            reasons: list[str] = orjson.loads(body)["reasons"]
            return reasons if "redis: no answer to PING (ConnectionError)" in reasons else []

        print("reasons:", eventually(redis_named, timeout=60))
        assert get(settings, "/health") == (200, b'{"status":"alive"}')
        assert worker.alive()
