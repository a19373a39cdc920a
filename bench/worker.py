"""The full pipeline: one ``salespulse worker`` subprocess, watched from the broker.

Nothing here asks the worker anything while it works: its start and its progress are read
from its consumer group on the broker (bench.progress). /metrics is fetched once, after the
run, to time one scrape.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from bench.progress import POLL_S, Drain, OffsetWatch, describe
from bench.stack import settings_env
from streams.serving.web_access import bearer_header
from streams.settings import Settings
from streams.stack.process import ProcessRecord, log_tail, spawn

REPO = Path(__file__).resolve().parents[1]
SAY_EVERY_S = 5.0


class WorkerFailed(RuntimeError):
    """The worker died or did not get there in time; the message names its log."""


class Worker:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.url = f"http://127.0.0.1:{settings.web_port}/metrics"
        self.process: ProcessRecord | None = None
        self.watch = OffsetWatch(settings)

    async def start(self) -> None:
        await self.watch.start()  # the topics exist: the backlog or the replay made them
        salespulse = Path(sys.executable).parent / "salespulse"
        self.process = spawn(
            [str(salespulse), "worker"], self.log, cwd=REPO,
            env=settings_env(self.settings), die_with_parent=True,
        )  # fmt: skip

    async def stop(self) -> None:
        try:
            await self.watch.stop()
        finally:
            if self.process is not None:
                await asyncio.to_thread(self.process.stop)

    def fail(self, what: str) -> WorkerFailed:
        cause = first_crash(self.log)
        if cause:
            what = f"{what} ({cause})"
        return WorkerFailed(f"{what}\n--- worker log {self.log} (tail):\n{log_tail(self.log, 40)}")

    def check_alive(self) -> None:
        if self.process is None or not self.process.alive():
            raise self.fail("the worker exited")

    async def wait_started(self, limit_s: float) -> float:
        """Wait until the worker's group is Stable with an assignment; when, monotonic."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            self.check_alive()
            polled = time.monotonic()
            if await self.watch.started():
                return polled
            await asyncio.sleep(max(0.0, POLL_S - (time.monotonic() - polled)))
        raise self.fail(f"the worker's group got no assignment within {limit_s:.0f} s")

    async def wait_drained(
        self,
        limit_s: float,
        say: Callable[[str], None],
        expected_inputs: int | None = None,
        quiet_s: float = 2.0,
        also: Callable[[], Awaitable[bool]] | None = None,
    ) -> float:
        """Wait until the group committed every watched partition to its end (bench.progress);
        when it drained, monotonic. ``also``: an extra condition, asked only once drained (it
        reads Redis, never the worker)."""
        drain = Drain(self.watch.stages, quiet_s=quiet_s)
        started = time.monotonic()
        deadline = started + limit_s
        next_say = started + SAY_EVERY_S
        last = "no snapshot yet"
        while True:
            self.check_alive()
            polled = time.monotonic()
            snap = await self.watch.snapshot()
            last = describe(snap, self.watch.stages, expected_inputs)
            if drain.observe(snap):
                assert drain.finished is not None
                if also is None or await also():
                    return drain.finished
                drain = Drain(self.watch.stages, quiet_s=quiet_s)  # not yet: watch again
            now = time.monotonic()
            if now > deadline:
                raise self.fail(f"the pipeline did not drain in {limit_s:.0f} s: {last}")
            if now >= next_say:
                next_say = now + SAY_EVERY_S
                say(f"  [{now - started:5.0f} s] {last}")
            await asyncio.sleep(max(0.0, POLL_S - (time.monotonic() - polled)))

    async def scrape(self) -> tuple[float, bytes]:
        """One GET /metrics: (milliseconds, the page)."""
        self.check_alive()
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            started = time.perf_counter()
            async with http.get(self.url, headers=bearer_header(self.settings)) as response:
                page = await response.read()
                response.raise_for_status()
            return (time.perf_counter() - started) * 1000, page

    def _proc(self, name: str) -> str | None:
        """``/proc/<worker pid>/<name>``; None before the worker starts or once it is gone."""
        if self.process is None:
            return None
        try:
            return Path(f"/proc/{self.process.pid}/{name}").read_text()
        except OSError:
            return None

    def cpu_seconds(self) -> float | None:
        """CPU time the worker process has used so far (user + system; None once gone)."""
        if (stat := self._proc("stat")) is None:
            return None
        fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float | None:
        """VmHWM of the worker process, in MB (None once it is gone)."""
        if (status := self._proc("status")) is None:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None


def first_crash(log: Path) -> str | None:
    """The first "Crashed reason=..." of a faust log (the tail is mostly the shutdown)."""
    try:
        with log.open(errors="replace") as lines:
            for line in lines:
                if "Crashed reason=" in line:
                    return line.split("Crashed reason=", 1)[1].strip()[:300]
    except OSError:
        return None
    return None
