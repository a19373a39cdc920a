"""The Redis clients of salespulse, made from the settings with their AUTH and TLS options.

Every Redis client of the project (worker, CLI, bench, tests, the local stack's readiness probe)
comes from ``redis_client`` (asyncio) or ``sync_redis_client``, so a ``rediss://`` URL, the
credentials and the CA / client certificate apply everywhere. ``check_redis`` is the first
contact of the worker and of the CLI; its errors name the setting to fix:

- ``RedisRefused``: Redis turned the client away (NOAUTH, WRONGPASS, certificate verify
  failed). Retrying cannot help: the worker and the CLI stop.
- ``RedisUnreachable``: nothing answered (Redis down, wrong port, TLS on one side only). The
  CLI stops; the worker starts anyway and writes the read model once Redis answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError

if TYPE_CHECKING:
    from streams.settings import Settings


# How the socket layer says that nothing listens at the address (or that it does not exist).
NOTHING_THERE = ("connect call failed", "connection refused", "name or service not known")


class RedisProblem(RuntimeError):
    """Redis cannot be used with these settings; the message names the setting to fix."""


class RedisRefused(RedisProblem):
    """Redis turned this client away: its credentials or its TLS trust are wrong."""


class RedisUnreachable(RedisProblem):
    """Redis did not answer this client: down, another address or port, TLS mismatch."""


@dataclass(frozen=True)
class RedisAccess:
    """How to reach one Redis: its URL, credentials and TLS files."""

    url: str
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def of(cls, settings: Settings) -> RedisAccess:
        password = settings.redis_password
        return cls(
            url=settings.redis_url,
            username=settings.redis_username,
            password=None if password is None else password.get_secret_value(),
            ca_file=settings.redis_ca_file,
            cert_file=settings.redis_cert_file,
            key_file=settings.redis_key_file,
        )

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "rediss"


def client_options(access: RedisAccess) -> dict[str, Any]:
    """Keyword arguments of ``Redis.from_url`` (sync or asyncio) beyond what the URL says."""
    options: dict[str, Any] = {}
    if access.username is not None:
        options["username"] = access.username
    if access.password is not None:
        options["password"] = access.password
    if access.tls:
        # The certificate and its host name are always checked; the CA defaults to the system's.
        options["ssl_cert_reqs"] = "required"
        options["ssl_check_hostname"] = True
        if access.ca_file is not None:
            options["ssl_ca_certs"] = str(access.ca_file)
        if access.cert_file is not None and access.key_file is not None:
            options["ssl_certfile"] = str(access.cert_file)
            options["ssl_keyfile"] = str(access.key_file)
    return options


def _access(source: Settings | RedisAccess) -> RedisAccess:
    return source if isinstance(source, RedisAccess) else RedisAccess.of(source)


def redis_client(source: Settings | RedisAccess, **extra: Any) -> aioredis.Redis:
    """The asyncio client of the Redis the settings name."""
    access = _access(source)
    return aioredis.Redis.from_url(access.url, **client_options(access), **extra)


def sync_redis_client(source: Settings | RedisAccess, **extra: Any) -> redis.Redis:
    """The blocking client of the same Redis (tests, the local stack's readiness probe)."""
    access = _access(source)
    return redis.Redis.from_url(access.url, **client_options(access), **extra)


def diagnose(exc: RedisError, access: RedisAccess) -> RedisProblem:
    """What ``exc`` from Redis means for this client, and which setting to fix."""
    text = str(exc)
    lower = text.lower()
    where = f"Redis at {redis_address(access.url)}"
    if isinstance(exc, AuthenticationError):
        if access.password is None and urlsplit(access.url).password is None:
            return RedisRefused(
                f"{where} requires a password (NOAUTH): set SALESPULSE_REDIS_PASSWORD (and "
                "SALESPULSE_REDIS_USERNAME for an ACL user)"
            )
        return RedisRefused(
            f"{where} refused the credentials (WRONGPASS): set SALESPULSE_REDIS_PASSWORD "
            "(and SALESPULSE_REDIS_USERNAME) to the ones Redis was given"
        )
    if isinstance(exc, NoPermissionError):
        return RedisRefused(
            f"{where} refused a command to this user (NOPERM: {text}): the read model writes "
            "with a script (streams/serving/redis_batch.py); grant the user (ACL SETUSER) "
            "+@hash +@sortedset +@string +ping +evalsha +eval +script|load "
            "+script|exists on the prefix's keys"
        )
    if "certificate verify failed" in lower:
        return RedisRefused(
            f"{where}: its TLS certificate is not trusted ({text}): set SALESPULSE_REDIS_CA_FILE "
            "to the CA certificate (PEM) that signed it"
        )
    if any(marker in lower for marker in NOTHING_THERE):
        return RedisUnreachable(
            f"{where} did not answer ({text}): set SALESPULSE_REDIS_URL to a running Redis "
            "(`salespulse stack up` starts one)"
        )
    if access.tls:
        return RedisUnreachable(
            f"{where} did not complete TLS ({text}): if that port is not TLS, set "
            "SALESPULSE_REDIS_URL to its redis:// URL; else check that Redis is running"
        )
    if "reset by peer" in lower or "closed by server" in lower:
        return RedisUnreachable(
            f"{where} dropped the connection ({text}): if that port is TLS, set "
            "SALESPULSE_REDIS_URL to rediss://... and SALESPULSE_REDIS_CA_FILE to its CA"
        )
    return RedisUnreachable(f"{where} failed ({text}): check SALESPULSE_REDIS_URL")


async def check_redis(source: Settings | RedisAccess, scripts: tuple[str, ...] = ()) -> None:
    """PING Redis once with the settings' options and load ``scripts`` (the worker's: a user
    that may not run them is refused now, not at every flush); raise what went wrong as a
    RedisProblem."""
    access = _access(source)
    client = redis_client(access, socket_connect_timeout=5, socket_timeout=5)
    try:
        await client.ping()
        for script in scripts:
            await client.script_load(script)
    except RedisError as exc:
        raise diagnose(exc, access) from exc
    finally:
        await client.aclose()


def redis_address(url: str) -> str:
    """``host:port`` of a Redis URL, without the credentials it may hold."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"
