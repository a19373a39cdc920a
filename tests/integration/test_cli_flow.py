"""What a person does: `stack up`, a worker and the simulator find it, `stack down` cleans up."""

from __future__ import annotations

import os
import subprocess
import urllib.parse
import urllib.request
from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson

from streams.contracts.events import OrderPlaced
from streams.ingest.validate import InvalidEvent, Limits, validate
from streams.settings import Settings
from streams.stack.ports import free_port
from streams.stack.process import ProcessRecord
from streams.stack.state import StackRecord
from tests.kafka_tools import kcat_consume, needs_kcat
from tests.support import REPO, eventually, revenue_by_rep, salespulse, wait_http, worker_metric

pytestmark = needs_kcat


def run(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        salespulse(*args), env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def prometheus_query(base: str, query: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return list(orjson.loads(response.read())["data"]["result"])


def expected_revenue(settings: Settings) -> dict[tuple[date, str], Decimal]:
    """Revenue per (business day, rep) of the valid, first-seen orders on sales.orders."""
    limits = Limits(settings.max_event_bytes, settings.currency, dict(settings.fx_rates))
    seen: set[str] = set()
    totals: dict[tuple[date, str], Decimal] = {}
    for message in kcat_consume(settings, "sales.orders"):
        try:
            event = validate(str(message["payload"]).encode(), "sales.orders", limits).event
        except InvalidEvent:
            continue
        if event.event_id in seen or not isinstance(event, OrderPlaced):
            continue
        seen.add(event.event_id)
        key = (event.occurred_at.astimezone(settings.zone).date(), event.rep_id)
        totals[key] = totals.get(key, Decimal(0)) + event.amount
    return totals


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
    pids = [s.process for s in record.services.values()]
    try:  # a failure below still takes the stack down
        assert set(record.services) == {"kafka", "redis", "prometheus", "alertmanager"}
        prometheus = f"http://{record.services['prometheus'].address}"
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
            sim = run(env, "simulate", "--count", "400", "--rate", "400", "--clock", "always-open")
            assert sim.returncode == 0, sim.stderr
            assert "orders" in sim.stdout or "order.placed" in sim.stdout, sim.stdout

            # What the worker must show: every valid, first-seen order, per rep and day, read
            # back from Kafka by an independent client.
            settings = Settings(home=home, **record.settings())  # type: ignore[arg-type]
            expected = expected_revenue(settings)
            assert expected, "the simulator sent no valid order"

            def redis_revenue() -> dict[tuple[date, str], Decimal]:
                return {
                    (day, rep): value
                    for day in {day for day, _ in expected}
                    for rep, value in revenue_by_rep(settings, day).items()
                }

            eventually(lambda: redis_revenue() == expected, timeout=90, interval=1)
            first_day, rep = min(expected)
            out = run(env, "kpi", "revenue", "--window", "day", "--at", first_day.isoformat(),
                      "--by", "rep")  # fmt: skip
            row = next(line for line in out.stdout.splitlines() if line.startswith(rep + " "))
            assert f"{expected[(first_day, rep)]:,.2f}".rstrip("0").rstrip(".") in row, out.stdout

            # The stack's Prometheus found the worker (its scrape target) and reads its metrics.
            def scraped_equals_served() -> bool:
                query = 'sum(salespulse_events_total{job="salespulse"})'
                result = prometheus_query(prometheus, query)
                served = worker_metric(web_port, "salespulse_events_total")
                return bool(result) and float(result[0]["value"][1]) == served > 0  # type: ignore[index]

            eventually(scraped_equals_served, timeout=60, interval=1)
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
