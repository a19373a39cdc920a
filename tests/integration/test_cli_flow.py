"""What a person does: `stack up`, a worker and the simulator find it, `stack down` cleans up."""

from __future__ import annotations

import os
import re
import subprocess
import urllib.parse
import urllib.request
from decimal import Decimal
from itertools import islice
from pathlib import Path

import orjson

from streams.simulate import order_events
from streams.stack.ports import free_port
from streams.stack.process import ProcessRecord
from streams.stack.state import StackRecord
from tests.support import REPO, eventually, salespulse, wait_http


def run(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        salespulse(*args), env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def prometheus_query(base: str, query: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return list(orjson.loads(response.read())["data"]["result"])


def test_stack_up_worker_simulate_revenue_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    web_port = free_port()
    # Only the home and the web port: no service address is given to any command.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    env |= {"SALESPULSE_HOME": str(home), "SALESPULSE_WEB_PORT": str(web_port)}

    up = run(env, "stack", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    record = StackRecord.load(home)
    assert record is not None
    assert set(record.services) == {"kafka", "redis", "prometheus"}
    pids = [s.process for s in record.services.values()]
    prometheus = f"http://{record.services['prometheus'].address}"
    try:
        again = run(env, "stack", "up")
        assert "already up" in again.stdout
        status = run(env, "stack", "status")
        assert status.returncode == 0
        assert f"SALESPULSE_KAFKA_BOOTSTRAP={record.services['kafka'].address}" in status.stdout

        worker_log = tmp_path / "worker.log"
        with worker_log.open("wb") as log:
            worker = subprocess.Popen(salespulse("worker"), env=env, cwd=REPO, stdout=log,
                                      stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_http(
                f"http://127.0.0.1:{web_port}/metrics", ProcessRecord.of(worker.pid), worker_log
            )
            sim = run(env, "simulate", "--count", "30", "--rate", "200", "--reps", "5")
            assert sim.returncode == 0, sim.stderr

            expected = sum(
                (Decimal(event["amount"]) for _, event in islice(order_events(5, 7, "EUR"), 30)),
                Decimal(0),
            )

            def revenue_total() -> Decimal | None:
                out = run(env, "revenue", timeout=30).stdout
                match = re.search(r"^\s+total\s+([\d,.]+)$", out, re.MULTILINE)
                return Decimal(match.group(1).replace(",", "")) if match else None

            eventually(lambda: revenue_total() == expected, timeout=60, interval=1)

            # The stack's Prometheus found the worker (its scrape target) and reads its metrics.
            query = 'sum(salespulse_events_total{job="salespulse"})'
            events = eventually(lambda: prometheus_query(prometheus, query), timeout=60, interval=1)
            assert float(events[0]["value"][1]) == 30  # type: ignore[index]
        finally:
            worker.terminate()
            assert worker.wait(timeout=30) == 0, worker_log.read_text()[-3000:]
        assert not list((home / "stack" / "prometheus-targets").glob("*.json"))
    finally:
        down = run(env, "stack", "down")
    assert down.returncode == 0
    assert not any(p.alive() for p in pids)
    assert not (home / "stack").exists()
    assert run(env, "stack", "status").returncode == 1
