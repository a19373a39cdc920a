"""Helpers of the infrastructure fault tests: a stack of their own whose services they stop
and restart (same data directory, same port), a floor produced at a steady pace while they
do, and the measures they end with (numbers equal to the reference, finals on kpi.updates).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.connections.kafka import kafka_options
from streams.settings import Settings
from streams.stack import launcher
from streams.stack.kafka import start_broker
from streams.stack.process import ProcessRecord, current_process
from streams.stack.redis import start_redis
from streams.stack.state import StackRecord, cache_dir
from streams.topics import ensure_topics
from tests.kafka_tools import kcat_consume
from tests.kpi_tools import Key, Message, engine_results, mismatches
from tests.reference.kpis import Result
from tests.support import Services

KINDS = ("minute", "day", "week", "month", "quarter")


@contextlib.contextmanager
def own_stack(run_dir: Path) -> Iterator[tuple[StackRecord, Services]]:
    """A Kafka broker and a Redis for one test, which it may stop (the session's stack is
    shared by every test); they die with the test session, like the session's."""
    record = launcher.up(
        run_dir, services=("kafka", "redis"), owner=current_process(), die_with_parent=True,
        progress=lambda line: None,
    )  # fmt: skip
    local = record.settings()
    try:
        yield record, Services(local["kafka_bootstrap"], local["redis_url"], None, None, None)
    finally:
        launcher.down(record)


def stop_service(record: StackRecord, name: str) -> None:
    """Stop one service of ``record`` (SIGTERM: a broker shuts down cleanly)."""
    record.services[name].process.stop()
    assert not record.services[name].process.alive(), f"{name} did not stop"


def restart_service(record: StackRecord, name: str) -> None:
    """Start a stopped service again on its port and data directory, and record it.

    From the main thread: a service started with ``die_with_parent`` dies with the thread
    that started it."""
    service = record.services[name]
    run_dir = Path(record.run_dir)
    port = int(service.address.rsplit(":", 1)[1])
    if name == "kafka":
        config = (run_dir / "kafka.properties").read_text()
        voters = re.search(r"^controller\.quorum\.voters=1@[^:]+:(\d+)$", config, re.M)
        assert voters, f"no controller port in {run_dir / 'kafka.properties'}"
        process = start_broker(
            run_dir, cache_dir(), port, int(voters.group(1)), die_with_parent=True
        )
    elif name == "redis":
        process = start_redis(run_dir, port, die_with_parent=True)
    else:
        raise ValueError(f"restart_service knows kafka and redis, not {name}")
    record.services[name] = replace(service, process=process)
    record.save()


class PacedFloor:
    """Sends ``reference`` at once, then ``stream`` at ``rate`` messages a second, from a
    thread (the test meanwhile stops and starts services). The producer is idempotent and
    waits out a broker outage (``timeout_s``): a message is sent once, or the floor fails."""

    def __init__(
        self, settings: Settings, reference: list[Message], stream: list[Message], rate: float,
        timeout_s: float = 120.0,
    ) -> None:  # fmt: skip
        self.settings, self.reference, self.stream = settings, reference, stream
        self.rate, self.timeout_s = rate, timeout_s
        self.sent = 0  # messages of ``stream`` handed to the producer
        self.delivered_at = 0.0  # time.monotonic() once the broker acknowledged them all
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="paced-floor", daemon=True)

    def start(self) -> PacedFloor:
        asyncio.run(ensure_topics(self.settings))
        self.thread.start()
        return self

    def wait_sent(self, count: int, timeout: float = 120.0) -> None:
        """Until ``count`` messages of the stream are handed to the producer."""
        deadline = time.monotonic() + timeout
        while self.sent < count and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.sent >= count, f"the floor sent {self.sent} of {count}: {self.error!r}"

    def join(self) -> None:
        """Until every message is acknowledged by the broker; fails if one was not."""
        self.thread.join(timeout=self.timeout_s + len(self.stream) / self.rate)
        assert not self.thread.is_alive(), f"the floor is still sending ({self.sent} sent)"
        if self.error is not None:
            raise AssertionError(f"the floor failed after {self.sent} messages") from self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._send())
        except BaseException as exc:  # reported by join()
            self.error = exc

    async def _send(self) -> None:
        timeout_ms = int(self.timeout_s * 1000)
        producer = AIOKafkaProducer(
            **kafka_options(self.settings).client, acks="all",
            enable_idempotence=True, request_timeout_ms=timeout_ms,
        )  # fmt: skip
        await producer.start()
        try:
            deliveries = [
                await producer.send(self.settings.topic(topic), value=value, key=key)
                for topic, key, value in self.reference
            ]
            began = time.monotonic()
            for n, (topic, key, value) in enumerate(self.stream):
                await asyncio.sleep(max(0.0, began + n / self.rate - time.monotonic()))
                deliveries.append(
                    await producer.send(self.settings.topic(topic), value=value, key=key)
                )
                self.sent = n + 1
            await asyncio.gather(*deliveries)
            self.delivered_at = time.monotonic()
        finally:
            await producer.stop()


def right_again(
    settings: Settings, expected: dict[Key, Result], since: float, timeout: float = 150.0
) -> float:
    """The moment (``time.monotonic()``) every KPI record in Redis equals ``expected``
    (values, numerators, denominators, whether final or not yet), polled from ``since``."""
    deadline = since + timeout
    problems: list[str] = []
    while time.monotonic() < deadline:
        problems = mismatches(engine_results(settings), expected, KINDS)
        if not problems:
            return time.monotonic()
        time.sleep(0.5)
    raise AssertionError(
        f"Redis still differs from the reference {time.monotonic() - since:.0f} s after the "
        f"fault ended: {len(problems)} differences, first ones:\n" + "\n".join(problems[:20])
    )


def recovery(fault: str, right_at: float, since: dict[str, float]) -> str:
    """A line saying how long after each moment of ``since`` the numbers were right again."""
    after = ", ".join(f"{right_at - moment:.1f} s after {what}" for what, moment in since.items())
    return f"\n{fault}: every KPI right again {after}"


def missing_finals(settings: Settings, engine: dict[Key, dict[str, Any]]) -> list[str]:
    """The final KPI records of ``engine`` (Redis) that ``kpi.updates`` lacks, or has with
    other values (its newest final record of each is compared)."""
    newest: dict[str, dict[str, Any]] = {}
    for message in kcat_consume(settings, "kpi.updates"):
        record = orjson.loads(str(message["payload"]))
        key = str(message["key"])
        if record["final"] and record["revision"] >= newest.get(key, {}).get("revision", -1):
            newest[key] = record
    problems = []
    for (kpi, kind, start, dim, key), got in engine.items():
        if kind not in KINDS or not got["final"]:
            continue
        at = datetime.fromtimestamp(start, UTC).astimezone(settings.zone).isoformat()
        record = newest.get(f"{kpi}/{kind}/{at}/{dim}/{key}")
        triple = ("value", "numerator", "denominator")
        if record is None:
            problems.append(f"no final record of {kpi}/{kind}/{at}/{dim}/{key}: Redis {got}")
        elif [record[f] for f in triple] != [got[f] for f in triple]:
            problems.append(f"{kpi}/{kind}/{at}/{dim}/{key}: kpi.updates {record}, Redis {got}")
    return problems


def log_since(log: Path, offset: int) -> str:
    """What ``log`` gained after its first ``offset`` bytes."""
    with log.open("rb") as file:
        file.seek(offset)
        return file.read().decode(errors="replace")


def most_repeated(lines: list[str], top: int = 3) -> str:
    """The ``top`` most frequent of ``lines`` with their counts, timestamps and numbers
    masked (which messages a flood of log lines is made of)."""
    masked = Counter(re.sub(r"\d+", "N", line.split("] ", 2)[-1]) for line in lines)
    return "; ".join(f"{count} x {line[:160]!r}" for line, count in masked.most_common(top))


def readiness(settings: Settings) -> tuple[int, dict[str, Any]]:
    """The worker's ``GET /ready``: (status, JSON answer)."""
    url = f"http://127.0.0.1:{settings.web_port}/ready"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def stopped_within(process: ProcessRecord, timeout: float) -> bool:
    """Whether ``process`` exits by itself within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while process.alive() and time.monotonic() < deadline:
        time.sleep(0.25)
    return not process.alive()
