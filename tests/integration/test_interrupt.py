"""An interrupted test run (SIGINT, or kill -9 of pytest) leaves nothing that breaks the next."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.stack.process import ProcessRecord
from streams.stack.state import StackRecord
from tests.support import REPO, eventually


def start_probe(home: Path, ready: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    env |= {"SALESPULSE_HOME": str(home), "PROBE_READY_FILE": str(ready)}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s",
             "tests/integration/interrupt_probe.py"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_ready(probe: subprocess.Popen[bytes], ready: Path, log: Path) -> list[ProcessRecord]:
    eventually(lambda: ready.exists() or probe.poll() is not None, timeout=120)
    assert ready.exists(), log.read_text()[-3000:]
    record = StackRecord.read(Path(ready.read_text()))
    assert record is not None
    assert set(record.services) == {"kafka", "redis", "prometheus", "alertmanager"}
    processes = [s.process for s in record.services.values()]
    assert all(p.alive() for p in processes)
    return processes


def test_kill_9_then_sigint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first_ready, second_ready = tmp_path / "ready-1", tmp_path / "ready-2"

    # 1. kill -9 of pytest: its services die with it (the kernel kills them).
    probe = start_probe(home, first_ready, tmp_path / "probe-1.log")
    killed = wait_ready(probe, first_ready, tmp_path / "probe-1.log")
    stale_dir = Path(first_ready.read_text())
    probe.send_signal(signal.SIGKILL)
    probe.wait(timeout=30)
    eventually(lambda: not any(p.alive() for p in killed), timeout=20)

    # 2. The next run starts cleanly, removing what the killed one left on disk.
    log = tmp_path / "probe-2.log"
    probe = start_probe(home, second_ready, log)
    processes = wait_ready(probe, second_ready, log)
    assert not stale_dir.exists()
    assert "stopped a test stack left by an interrupted run" in log.read_text()

    # 3. SIGINT (Ctrl-C): pytest tears the session down; services stopped, run dir removed.
    time.sleep(0.5)
    probe.send_signal(signal.SIGINT)
    try:
        assert probe.wait(timeout=60) != 0
    finally:  # a probe that ignored Ctrl-C must not run on beside the next tests
        probe.kill()
        probe.wait(timeout=30)
    assert not any(p.alive() for p in processes)
    assert not Path(second_ready.read_text()).exists(), log.read_text()[-3000:]
