"""bench.worker: the worker's CPU time and peak RSS, read from /proc (a real child process,
no broker)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.worker import Worker
from streams.settings import Settings

BUSY = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="no /proc on this system")
async def test_cpu_and_rss_are_the_process_s_own_and_none_once_it_is_gone(
    tmp_path: Path,
) -> None:
    worker = Worker(  # within a loop: its offset watch is an aiokafka client, never started
        Settings(), tmp_path / "worker.log"
    )
    assert worker.cpu_seconds() is None  # not started
    script = tmp_path / "busy.py"
    script.write_text(BUSY + "import sys\nsys.stdin.read()\n")
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdin=asyncio.subprocess.PIPE
    )
    try:
        worker.process = SimpleNamespace(pid=child.pid)  # type: ignore[assignment]
        used = 0.0
        for _ in range(200):  # until the busy loop is done (at most ~10 s)
            used = worker.cpu_seconds() or 0.0
            if used >= 0.4:
                break
            await asyncio.sleep(0.05)
        assert 0.4 <= used < 5.0
        assert 1.0 < (worker.peak_rss_mb() or 0.0) < 1000.0  # a Python's VmHWM, in MB
    finally:
        await child.communicate(b"")
    assert worker.cpu_seconds() is None  # reaped: its /proc entry is gone
    assert worker.peak_rss_mb() is None
