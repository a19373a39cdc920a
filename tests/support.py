"""Helpers shared by the tests: settings isolated per test, real worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from streams.connections.redis import sync_redis_client
from streams.serving.web_access import bearer_header
from streams.settings import Settings
from streams.stack.ports import free_port
from streams.stack.process import ProcessRecord, log_tail, spawn

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Services:
    """Where the services of this test session are."""

    kafka_bootstrap: str
    redis_url: str
    prometheus_url: str | None
    alertmanager_url: str | None
    run_dir: Path | None  # the local stack's run dir; None when using external services
    # The SALESPULSE_WEB_TOKEN the session's Prometheus sends when scraping the salespulse job
    # (None with an external Prometheus): a worker with this token is scraped.
    web_token: str | None = None
    # Settings values of a secured local stack (`stack up --secure`): Kafka SASL_SSL (protocol,
    # user, password, CA file), Redis TLS and password
    security: dict[str, str] = field(default_factory=dict)


def isolated_settings(services: Services, home: Path, **overrides: object) -> Settings:
    """Settings whose topics, consumer group, Redis keys and state belong to one test."""
    run = uuid.uuid4().hex[:10]
    values: dict[str, object] = {
        "kafka_bootstrap": services.kafka_bootstrap,
        "redis_url": services.redis_url,
        "prometheus_url": services.prometheus_url or "http://127.0.0.1:9",
        "alertmanager_url": services.alertmanager_url or "http://127.0.0.1:9",
        "topic_prefix": f"t{run}.",
        "app_id": f"sp-test-{run}",
        "redis_prefix": f"t{run}:",
        "home": home,
        "web_port": free_port(),
        "topic_partitions": 2,
        "engine_flush_interval_s": 0.2,
        **services.security,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a salespulse subprocess needs to use exactly ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    return env | settings.environment()


def salespulse(*args: str) -> list[str]:
    """argv running the salespulse CLI of this checkout with this interpreter."""
    return [sys.executable, "-m", "streams.cli", *args]


@contextlib.contextmanager
def running_worker(
    settings: Settings, log: Path, argv: list[str] | None = None
) -> Iterator[ProcessRecord]:
    """A real ``salespulse worker`` process (or ``argv``, a program running one), yielded
    once it owns partitions.

    A failure inside the block is re-raised with the tail of the worker's log.
    """
    process = spawn(
        argv or salespulse("worker"), log, cwd=REPO, env=settings_env(settings),
        die_with_parent=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{settings.web_port}/metrics"
        headers = bearer_header(settings)
        wait_http(url, process, log, headers=headers)
        assigned = "salespulse_assigned_partitions"
        eventually(
            lambda: metric(wait_http(url, process, log, headers=headers), assigned) > 0,
            timeout=60,
        )
        try:
            yield process
        except AssertionError as exc:
            tail = log_tail(log, 40)
            dump_tasks(process, log)
            raise AssertionError(
                f"{exc}\n--- worker log ({log}; what each task waited on is at its end):\n{tail}"
            ) from exc
    finally:
        process.stop()


def dump_tasks(process: ProcessRecord, log: Path, wait_s: float = 3.0) -> None:
    """Have a worker that a test found wrong write to its log the stack of every thread and
    asyncio task (mode's worker does on SIGUSR1), so a stall shows what it waited on."""
    if not process.alive():
        return
    size = log.stat().st_size if log.exists() else 0
    try:
        os.kill(process.pid, signal.SIGUSR1)
    except OSError:
        return
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and (log.stat().st_size if log.exists() else 0) == size:
        time.sleep(0.1)
    time.sleep(0.5)  # the dump is written in one go, a little at a time


def metric(text: bytes | str, name: str, **labels: str) -> float:
    """Sum of the samples ``name`` matching ``labels`` in a /metrics page (0 when absent)."""
    page = text.decode() if isinstance(text, bytes) else text
    return sum(
        sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def worker_metric(port: int, name: str, **labels: str) -> float:
    """``metric`` of the worker serving /metrics on ``port``."""
    # Generous: a worker catching up on a backlog answers between two batches (docs/engine.md).
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        return metric(response.read(), name, **labels)


def wait_http(
    url: str, process: ProcessRecord, log: Path, timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> bytes:  # fmt: skip
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers=headers or {})
    while time.monotonic() < deadline:
        if not process.alive():
            raise AssertionError(f"process exited before {url} answered:\n{log_tail(log, 60)}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bytes(response.read())
        except (urllib.error.URLError, OSError):
            time.sleep(0.25)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s:\n{log_tail(log, 60)}")


def eventually(check, timeout: float = 60.0, interval: float = 0.25):  # type: ignore[no-untyped-def]
    """Call ``check`` until it returns a truthy value; fail with its last result."""
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout:.0f} s; last result: {result!r}")


def revenue_by_rep(settings: Settings, day: date) -> dict[str, Decimal]:
    """Published revenue per rep of a business day (Redis ``kpi:revenue:day:<start>:rep``)."""
    import orjson

    start = int(datetime.combine(day, datetime.min.time(), settings.zone).timestamp())
    client = sync_redis_client(settings)
    raw = client.hgetall(f"{settings.redis_prefix}kpi:revenue:day:{start}:rep")
    return {k.decode(): Decimal(orjson.loads(v)["value"]) for k, v in raw.items()}
