"""A local ``redis-server`` (Debian package) for the read model, plain or secured.

Secured, it serves TLS only (a certificate of ``streams.stack.certs``; client certificates are
accepted, not required) and asks for a password, which it reads from a config file readable by
the owner only (never from its command line, which ``ps`` shows to everyone).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from streams.connections.redis import RedisAccess, sync_redis_client
from streams.stack.certs import TlsFiles
from streams.stack.errors import StackError
from streams.stack.ports import HOST
from streams.stack.process import ProcessRecord, log_tail, spawn

READY_TIMEOUT_S = 20.0
AUTH_CONFIG = "redis-auth.conf"


def start_redis(
    run_dir: Path,
    port: int,
    *,
    die_with_parent: bool,
    password: str | None = None,
    tls: TlsFiles | None = None,
) -> ProcessRecord:
    """Start redis-server on ``port`` and return once it answers PING.

    With ``tls`` the port is TLS only; with ``password`` every client must AUTH. The read model
    is a projection that the worker rewrites, so nothing is persisted.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise StackError(
            "redis-server is not installed: run `apt-get install -y redis-server` as root "
            "(`make install` does it when run as root), or set SALESPULSE_REDIS_URL to a "
            "running Redis."
        )
    run_dir = run_dir.resolve()
    log = run_dir / "redis.log"
    argv = [binary] if password is None else [binary, str(_auth_config(run_dir, password))]
    argv += [
        "--bind", HOST, "--save", "", "--appendonly", "no",
        "--dir", str(run_dir), "--daemonize", "no", "--protected-mode", "yes",
    ]  # fmt: skip
    argv += _listen_args(port, tls)
    process = spawn(argv, log, cwd=run_dir, die_with_parent=die_with_parent)
    _wait_ready(process, redis_access(port, password, tls), log)
    return process


def redis_access(port: int, password: str | None, tls: TlsFiles | None) -> RedisAccess:
    """How a client reaches the redis-server ``start_redis`` started with these arguments."""
    scheme = "redis" if tls is None else "rediss"
    return RedisAccess(
        url=f"{scheme}://{HOST}:{port}/0",
        password=password,
        ca_file=None if tls is None else tls.ca,
    )


def _listen_args(port: int, tls: TlsFiles | None) -> list[str]:
    if tls is None:
        return ["--port", str(port)]
    return [
        "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", str(tls.server_cert), "--tls-key-file", str(tls.server_key),
        "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "optional",
    ]  # fmt: skip


def _auth_config(run_dir: Path, password: str) -> Path:
    """A config file (mode 0600) holding ``requirepass``, quoted as redis.conf reads it."""
    path = run_dir / AUTH_CONFIG
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as config:
        config.write(f'requirepass "{quoted}"\n')
    return path


def _wait_ready(process: ProcessRecord, access: RedisAccess, log: Path) -> None:
    from redis.exceptions import RedisError

    client = sync_redis_client(access, socket_timeout=1, socket_connect_timeout=1)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if not process.alive():
                raise StackError(f"redis-server exited during start-up:\n{log_tail(log)}")
            try:
                if client.ping():
                    return
            except RedisError:
                time.sleep(0.1)
    finally:
        client.close()
    process.stop()
    raise StackError(f"redis-server did not answer PING at {access.url}:\n{log_tail(log)}")
