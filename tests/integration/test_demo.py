"""`salespulse demo` (what `make demo` runs): revenue moves within 60 s; Ctrl-C stops all."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

from streams.stack.ports import free_port
from tests.support import REPO, salespulse

REVENUE_LINE = re.compile(r"revenue today ([\d,.]+) EUR across (\d+) reps")


def processes_with_env(marker: str) -> list[int]:
    """Pids of the processes whose environment holds ``marker`` (all the demo started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_demo_shows_revenue_moving_and_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    marker = f"SALESPULSE_HOME={home}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    env |= {"SALESPULSE_HOME": str(home), "SALESPULSE_WEB_PORT": str(free_port())}
    demo = subprocess.Popen(
        salespulse("demo", "--rate", "20"), cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(line) for line in demo.stdout], daemon=True
        ).start()

        started = time.monotonic()
        seen: list[Decimal] = []
        output: list[str] = []
        while time.monotonic() - started < 60 and not (len(seen) >= 2 and seen[-1] > seen[0] > 0):
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert demo.poll() is None, "".join(output)
                continue
            output.append(line)
            if (match := REVENUE_LINE.search(line)) and (
                value := Decimal(match.group(1).replace(",", ""))
            ) > 0:  # lines before the first order show 0.00
                seen.append(value)
        elapsed = time.monotonic() - started
        assert len(seen) >= 2, "".join(output)
        assert seen[-1] > seen[0] > 0, "".join(output)
        assert elapsed < 60
        assert "worker metrics" in "".join(output)
        assert len(processes_with_env(marker)) >= 5  # demo, worker, simulator, 3 services

        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=60) == 0
        deadline = time.monotonic() + 15
        while processes_with_env(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_with_env(marker) == []
        assert not (home / "stack").exists()
    finally:  # a failure above must not leave the demo's stack running beside the next tests
        for pid in processes_with_env(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        demo.wait(timeout=30)
