"""A local ``redis-server`` (Debian package) for the read model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from streams.stack.errors import StackError
from streams.stack.ports import HOST
from streams.stack.process import ProcessRecord, log_tail, spawn

READY_TIMEOUT_S = 20.0


def start_redis(run_dir: Path, port: int, *, die_with_parent: bool) -> ProcessRecord:
    """Start redis-server on ``port`` and return once it answers PING.

    The read model is a projection that the worker rewrites, so nothing is persisted.
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
    argv = [
        binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
        "--dir", str(run_dir), "--daemonize", "no", "--protected-mode", "yes",
    ]  # fmt: skip
    process = spawn(argv, log, cwd=run_dir, die_with_parent=die_with_parent)
    _wait_ready(process, port, log)
    return process


def _wait_ready(process: ProcessRecord, port: int, log: Path) -> None:
    import redis  # the sync client, only for the readiness probe

    client = redis.Redis(host=HOST, port=port, socket_timeout=1)
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if not process.alive():
                raise StackError(f"redis-server exited during start-up:\n{log_tail(log)}")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
    finally:
        client.close()
    process.stop()
    raise StackError(f"redis-server did not answer PING on port {port}:\n{log_tail(log)}")
