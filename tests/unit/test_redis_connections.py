"""streams.connections.redis: the client options made from the settings, and what a refusal
tells the user to fix. Clients are built, never connected: nothing here needs a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, ConnectionError, RedisError, TimeoutError

from streams.connections.redis import (
    RedisAccess,
    RedisProblem,
    RedisRefused,
    RedisUnreachable,
    diagnose,
    redis_address,
    redis_client,
    sync_redis_client,
)
from streams.settings import Settings

PEM = Path("/run/tls/ca.pem")


def pool_kwargs(client: redis.Redis | aioredis.Redis) -> dict[str, Any]:
    return dict(client.connection_pool.connection_kwargs)


def test_plain_url_gets_no_tls_options() -> None:
    kwargs = pool_kwargs(sync_redis_client(RedisAccess("redis://127.0.0.1:6379/2")))
    assert kwargs["db"] == 2
    assert not {"password", "username", "ssl_ca_certs"} & kwargs.keys()


@pytest.mark.parametrize("make", [sync_redis_client, redis_client])
def test_rediss_gets_credentials_ca_and_client_certificate(make: Any) -> None:
    access = RedisAccess(
        "rediss://redis.example:6380/0", "worker", "s3cret", PEM, Path("/c.pem"), Path("/c.key")
    )
    client = make(access)
    kwargs = pool_kwargs(client)
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert (kwargs["username"], kwargs["password"]) == ("worker", "s3cret")
    assert kwargs["ssl_ca_certs"] == str(PEM)
    assert (kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == ("/c.pem", "/c.key")
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_check_hostname"]) == ("required", True)


def test_credentials_in_the_url_are_used() -> None:
    kwargs = pool_kwargs(redis_client(RedisAccess("rediss://bob:pw@redis.example:6380/0")))
    assert (kwargs["username"], kwargs["password"]) == ("bob", "pw")


def test_settings_become_the_access(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    settings = Settings(
        redis_url="rediss://redis.example:6380/0",
        redis_password="s3cret",  # type: ignore[arg-type]
        redis_ca_file=ca,
    )
    assert RedisAccess.of(settings) == RedisAccess(
        "rediss://redis.example:6380/0", None, "s3cret", ca, None, None
    )


def test_address_hides_the_credentials() -> None:
    assert redis_address("rediss://bob:pw@redis.example:6380/0") == "rediss://redis.example:6380"
    assert redis_address("redis://127.0.0.1/0") == "redis://127.0.0.1:6379"


TLS = RedisAccess("rediss://127.0.0.1:6380/0", ca_file=PEM)
PLAIN = RedisAccess("redis://127.0.0.1:6379/0")
VERIFY = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
REFUSED = "Error 111 connecting to 127.0.0.1:9. Connect call failed ('127.0.0.1', 9)."
NOAUTH = AuthenticationError("HELLO must be called with the client already authenticated")


@pytest.mark.parametrize(
    ("access", "error", "kind", "named"),
    [
        (TLS, AuthenticationError("Authentication required."), RedisRefused, "REDIS_PASSWORD"),
        (TLS, NOAUTH, RedisRefused, "requires a password (NOAUTH)"),
        (RedisAccess(TLS.url, password="x"), AuthenticationError("invalid"), RedisRefused,
         "WRONGPASS"),
        (RedisAccess("redis://:x@h:1/0"), AuthenticationError("invalid"), RedisRefused,
         "WRONGPASS"),
        (TLS, ConnectionError(f"Error 1. {VERIFY}"), RedisRefused, "SALESPULSE_REDIS_CA_FILE"),
        (TLS, TimeoutError("Timeout connecting to server"), RedisUnreachable, "its redis:// URL"),
        (PLAIN, ConnectionError("(104, 'Connection reset by peer')"), RedisUnreachable,
         "rediss://"),
        (PLAIN, ConnectionError(REFUSED), RedisUnreachable, "to a running Redis"),
        (TLS, ConnectionError(REFUSED), RedisUnreachable, "to a running Redis"),
        (PLAIN, ConnectionError("Error -2 connecting to nohost:6379. Name or service not known."),
         RedisUnreachable, "to a running Redis"),
        (PLAIN, RedisError("something else"), RedisUnreachable, "check SALESPULSE_REDIS_URL"),
    ],
)  # fmt: skip
def test_diagnosis_names_the_setting(
    access: RedisAccess, error: RedisError, kind: type[RedisProblem], named: str
) -> None:
    problem = diagnose(error, access)
    assert type(problem) is kind
    assert named in str(problem)
    assert str(problem).startswith(f"Redis at {redis_address(access.url)}")
