"""streams.serving.web_access: the token check of every path, and where the server listens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from streams.serving.web_access import Access, bearer_header, bind_host, is_loopback, middleware
from streams.settings import Settings

TOKEN = "full-access-token-0123456789"
TV = "read-only-tv-token-0123456789"
BEARER = f"Bearer {TOKEN}"
GUARDED = Access(SecretStr(TOKEN), SecretStr(TV))

# (path, Authorization header, ?token=) -> allowed
CASES = [
    ("/api/kpis", BEARER, None, True),
    ("/api/kpis", f"bearer  {TOKEN} ", None, True),  # the scheme is case-insensitive
    ("/api/kpis", None, None, False),
    ("/api/kpis", f"Bearer {TOKEN}x", None, False),
    ("/api/kpis", f"Basic {TOKEN}", None, False),
    ("/api/kpis", f"Bearer {TV}", None, False),  # the read-only token opens /tv only
    ("/api/kpis", None, TV, False),
    ("/api/kpis", None, TOKEN, False),  # the full token never in a URL
    ("/api/kpis/{kpi}", BEARER, None, True),
    ("/metrics", BEARER, None, True),
    ("/metrics", None, TV, False),
    ("/metrics", None, None, False),
    ("/tv", None, TV, True),
    ("/tv/", None, TV, True),
    ("/tv/stream", None, TV, True),
    ("/tv/snapshot", None, TV, True),
    ("/tv", BEARER, None, True),
    ("/tv", None, None, False),
    ("/tv", None, TV + "x", False),
    ("/tv", None, TOKEN, False),
    ("/tv/stream", None, "", False),
    ("/tvx", None, TV, False),
    ("/health", None, None, True),
    ("/ready", None, None, True),
    ("/", None, None, False),  # faust's own pages too
    ("/router/", None, None, False),
]


@pytest.mark.parametrize(("path", "authorization", "query", "allowed"), CASES)
def test_refusal(path: str, authorization: str | None, query: str | None, allowed: bool) -> None:
    refusal = GUARDED.refusal(path, authorization, query)
    assert (refusal is None) is allowed, refusal


def test_refusals_name_the_fix() -> None:
    assert "SALESPULSE_WEB_TOKEN" in str(GUARDED.refusal("/api/kpis", None, None))
    assert "Bearer" in str(GUARDED.refusal("/metrics", "Bearer nope", None))
    assert "/tv only" in str(GUARDED.refusal("/metrics", None, TV))
    assert "SALESPULSE_WEB_TV_TOKEN" in str(GUARDED.refusal("/tv", None, None))
    assert "SALESPULSE_WEB_TV_TOKEN" in str(GUARDED.refusal("/tv", None, "nope"))


def test_without_a_token_everything_is_open() -> None:
    open_ = Access(None)
    assert not open_.guarded
    assert open_.refusal("/metrics", None, None) is None
    assert open_.refusal("/api/kpis", "Bearer anything", "x") is None


def test_without_a_tv_token_the_url_opens_nothing() -> None:
    no_tv = Access(SecretStr(TOKEN))
    assert no_tv.refusal("/tv", None, "") is not None
    assert no_tv.refusal("/tv", None, TOKEN) is not None
    assert no_tv.refusal("/tv", BEARER, None) is None


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """A real aiohttp server with the middleware, a route for each kind of path."""

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    app = web.Application(middlewares=[middleware(GUARDED)])
    for path in ("/api/kpis/{kpi}", "/metrics", "/tv", "/tv/stream", "/health", "/ready"):
        app.router.add_get(path, hello)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield str(test_server.make_url("")).rstrip("/")
    finally:
        await test_server.close()


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.json()


async def test_the_middleware_answers_401_with_json_naming_the_fix(server: str) -> None:
    status, body = await get(f"{server}/api/kpis/revenue")
    assert status == 401
    assert "SALESPULSE_WEB_TOKEN" in str(body["error"])
    assert await get(f"{server}/api/kpis/revenue", {"Authorization": BEARER}) == (
        200, {"path": "/api/kpis/revenue"}
    )  # fmt: skip


async def test_the_middleware_judges_the_route_served(server: str) -> None:
    assert (await get(f"{server}/tv/stream?token={TV}"))[0] == 200
    assert (await get(f"{server}/metrics?token={TV}"))[0] == 401
    assert (await get(f"{server}/health"))[0] == 200
    assert (await get(f"{server}/ready"))[0] == 200
    # a path that only looks like /tv is what the router makes of it
    assert (await get(f"{server}/tv/../metrics?token={TV}"))[0] == 401
    status, _ = await get(f"{server}/nowhere")
    assert status == 401  # unknown paths need the token too: nothing is said about them


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.0.2.7", False), ("worker", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_without_a_token_only_a_loopback_address_is_bound(tmp_path: Path) -> None:
    def settings(**values: object) -> Settings:
        return Settings(home=tmp_path, **{"web_token": None, **values})  # type: ignore[arg-type]

    assert bind_host(settings(web_host="0.0.0.0")) == "127.0.0.1"
    assert bind_host(settings(web_host="::1")) == "::1"
    assert bind_host(settings(web_host="0.0.0.0", web_token=TOKEN)) == "0.0.0.0"


def test_bearer_header_of_the_settings(tmp_path: Path) -> None:
    assert bearer_header(Settings(home=tmp_path, web_token=None)) == {}
    assert bearer_header(Settings(home=tmp_path, web_token=TOKEN)) == {"Authorization": BEARER}
