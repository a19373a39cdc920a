"""Who may read the worker's web server: one check for every path (an aiohttp middleware).

- ``SALESPULSE_WEB_TOKEN`` set: every path but ``/health`` and ``/ready`` needs
  ``Authorization: Bearer <token>``; 401 otherwise, with a JSON body naming the fix.
- ``SALESPULSE_WEB_TV_TOKEN`` (read-only, for wall screens that cannot send headers): accepted
  only as ``?token=`` on the wallboard's paths (``/tv`` and what the page reads), never
  elsewhere (``/api``, ``/metrics``).
- No token: nothing is checked, and the server listens on a loopback address only
  (``bind_host``): ``SALESPULSE_WEB_HOST`` set to another address is ignored, with a warning.

Tokens are compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import SecretStr

from streams.settings import Settings

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
OPEN_PATHS = frozenset({"/health", "/ready"})  # for orchestrators: never need a token
TV_PATHS = frozenset({"/tv", "/tv/stream", "/tv/snapshot"})  # the page and what it reads
SEND_TOKEN = "send SALESPULSE_WEB_TOKEN as `Authorization: Bearer <token>`"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _secret(value: SecretStr | None) -> bytes | None:
    return None if value is None else value.get_secret_value().encode()


def _same(given: str, expected: bytes) -> bool:
    return hmac.compare_digest(given.encode(), expected)


class Access:
    """The tokens of one worker and the decision for one request (pure)."""

    def __init__(self, token: SecretStr | None, tv_token: SecretStr | None = None) -> None:
        self._token = _secret(token)
        self._tv_token = _secret(tv_token)

    @classmethod
    def of(cls, settings: Settings) -> Access:
        return cls(settings.web_token, settings.web_tv_token)

    @property
    def guarded(self) -> bool:
        return self._token is not None

    def refusal(self, path: str, authorization: str | None, query_token: str | None) -> str | None:
        """None when the request may go on, else why not and how to fix it (a 401)."""
        if self._token is None or path in OPEN_PATHS:
            return None
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            if _same(credentials.strip(), self._token):
                return None
            return f"wrong token: {SEND_TOKEN}"
        tv_page = path.rstrip("/") in TV_PATHS
        if query_token is not None:
            if tv_page and self._tv_token is not None and _same(query_token, self._tv_token):
                return None
            if tv_page:
                return "wrong ?token=: use SALESPULSE_WEB_TV_TOKEN (the read-only screen token)"
            return (
                f"?token= is accepted on /tv only (the read-only wall-screen token): {SEND_TOKEN}"
            )
        if tv_page:
            return f"a token is needed: open /tv?token=<SALESPULSE_WEB_TV_TOKEN>, or {SEND_TOKEN}"
        return f"a token is needed: {SEND_TOKEN}"


def middleware(access: Access) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The aiohttp middleware applying ``access`` to every request of the web server."""

    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = access.refusal(
            _route_path(request), request.headers.get("Authorization"), request.query.get("token")
        )
        if refusal is not None:
            return web.json_response(
                {"error": refusal},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="salespulse"'},
            )
        return await handler(request)

    return check_access


def _route_path(request: web.Request) -> str:
    """The path of the route serving ``request`` (what is really served), else as asked."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def bearer_header(settings: Settings) -> dict[str, str]:
    """The ``Authorization`` header a worker with ``settings`` wants (none without a token):
    for clients of this checkout (tests, bench)."""
    token = settings.web_token
    return {} if token is None else {"Authorization": f"Bearer {token.get_secret_value()}"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def bind_host(settings: Settings) -> str:
    """Where the web server listens: ``web_host``, but without a token only a loopback one."""
    if settings.web_token is not None or is_loopback(settings.web_host):
        return settings.web_host
    return LOOPBACK


def announce(settings: Settings) -> None:
    """Say where the web server listens and whether it needs a token (at start)."""
    url = f"http://{bind_host(settings)}:{settings.web_port}"
    if settings.web_token is not None:
        wall = (
            f"wall screens: {url}/tv?token=<SALESPULSE_WEB_TV_TOKEN>"
            if settings.web_tv_token is not None
            else "no SALESPULSE_WEB_TV_TOKEN: browsers cannot open /tv (set one for wall screens)"
        )
        log.info(
            "web server on %s: a token is required (`Authorization: Bearer`, "
            "SALESPULSE_WEB_TOKEN) except on /health and /ready; %s",
            url,
            wall,
        )
    elif bind_host(settings) != settings.web_host:
        log.warning(
            "web server on %s only, no token required: SALESPULSE_WEB_HOST=%s is ignored "
            "without a token. Set SALESPULSE_WEB_TOKEN (16+ characters) to listen on %s",
            url,
            settings.web_host,
            settings.web_host,
        )
    else:
        log.info(
            "web server on %s, no token required (this machine only; set "
            "SALESPULSE_WEB_TOKEN to serve other hosts)",
            url,
        )
