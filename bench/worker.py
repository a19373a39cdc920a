"""The full pipeline: one ``salespulse worker`` subprocess, watched through its /metrics."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.stack import settings_env
from streams.settings import Settings
from streams.stack.process import ProcessRecord, log_tail, spawn

REPO = Path(__file__).resolve().parents[1]
COUNTED = ("salespulse_events_applied_total", "salespulse_dead_letters_total")


class WorkerFailed(RuntimeError):
    """The worker died or did not get there in time; the message names its log."""


class Worker:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.url = f"http://127.0.0.1:{settings.web_port}/metrics"
        self.process: ProcessRecord | None = None
        self.http: aiohttp.ClientSession | None = None

    def start(self) -> None:
        salespulse = Path(sys.executable).parent / "salespulse"
        self.process = spawn(
            [str(salespulse), "worker"], self.log, cwd=REPO,
            env=settings_env(self.settings), die_with_parent=True,
        )  # fmt: skip
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.process is not None:
            await asyncio.to_thread(self.process.stop)

    def fail(self, what: str) -> WorkerFailed:
        return WorkerFailed(f"{what}\n--- worker log {self.log} (tail):\n{log_tail(self.log, 40)}")

    def check_alive(self) -> None:
        if self.process is None or not self.process.alive():
            raise self.fail("the worker exited")

    async def metrics(self) -> dict[str, float] | None:
        """Sum of the samples of each metric name, or None while /metrics does not answer."""
        self.check_alive()
        assert self.http is not None
        try:
            async with self.http.get(self.url) as response:
                page = await response.text()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None
        sums: dict[str, float] = {}
        for family in text_string_to_metric_families(page):
            for sample in family.samples:
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
        return sums

    async def wait_consuming(self, limit_s: float) -> float:
        """Wait until the worker owns partitions (or counts anything); when, monotonic."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            sums = await self.metrics()
            if sums and (sums.get("salespulse_assigned_partitions", 0) > 0 or counted(sums) > 0):
                return time.monotonic()
            await asyncio.sleep(0.05)
        raise self.fail(f"the worker did not start consuming within {limit_s:.0f} s")

    async def wait_counted(
        self, expected: int, limit_s: float, say: Callable[[str], None]
    ) -> float:
        """Wait until applied + dead-lettered reaches ``expected``; when, monotonic."""
        started = time.monotonic()
        deadline = started + limit_s
        next_say = started + 5.0
        done = 0.0
        while True:
            sums = await self.metrics()
            now = time.monotonic()
            if sums is not None:
                done = counted(sums)
                if done >= expected:
                    return now
            if now > deadline:
                raise self.fail(
                    f"the worker applied or dead-lettered {done:,.0f} of {expected:,} messages "
                    f"in {limit_s:.0f} s"
                )
            if now >= next_say:
                next_say = now + 5.0
                say(f"  pipeline: {done:,.0f}/{expected:,} applied or dead-lettered")
            await asyncio.sleep(0.05)

    def peak_rss_mb(self) -> float | None:
        """VmHWM of the worker process, in MB (None once it is gone)."""
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None


def counted(sums: dict[str, float]) -> float:
    return sum(sums.get(name, 0.0) for name in COUNTED)
