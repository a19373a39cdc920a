"""A real Prometheus scrapes a real worker fed by the simulator.

- Every panel query of every Grafana dashboard returns data.
- The simulator's ``conversion-dip`` incident makes ``SalespulseWinRateDip`` fire within its
  ``for`` duration (plus two scrape and evaluation rounds).

The floor is simulated from the next weekday's 09:00 on an accelerated clock, so the worker sees two hours of a normal morning and then an hour of the incident in
event time (the alert compares the last hour with the month to date); the whole stream is produced at once, so the test does not wait for
the morning to pass. The morning is ahead of wall time, so stream time stays on it.
"""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from streams.settings import Settings
from streams.simulator.incidents import IncidentKind, IncidentSpec
from streams.simulator.produce import Options
from streams.stack.prometheus import register_target
from tests.dashboards import panel_queries
from tests.kpi_tools import (
    AHEAD_OF_THE_WALL_CLOCK,
    event_time,
    floor_messages,
    next_morning,
    produce,
)
from tests.support import REPO, Services, eventually, running_worker, worker_metric

ALERT = "SalespulseWinRateDip"
DIP_AFTER = timedelta(minutes=2)  # wall time of the simulated run: 2 event hours at x60
SPEED = 60


def _floor_with_a_dip(settings: Settings) -> list[tuple[str, bytes | None, bytes]]:
    """Reference records, then events from 09:00 to 12:00 event time; the dip starts at 11:00."""
    start = next_morning(settings)
    options = Options(
        rate=40, seed=3, clock=f"accelerated:{SPEED}",
        incidents=(IncidentSpec(IncidentKind.CONVERSION_DIP, DIP_AFTER),),
    )  # fmt: skip
    reference, stream = floor_messages(settings, options, start, until=start + timedelta(hours=3))
    return reference + stream


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=30) as response:
        body = orjson.loads(response.read())
    assert body["status"] == "success", body
    result = body["data"]["result"]
    return result if isinstance(result, list) else [result]


def _alerts(base: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base}/api/v1/alerts", timeout=30) as response:
        return orjson.loads(response.read())["data"]["alerts"]


def _for_seconds(name: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    for path in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == name:
                    text = str(rule.get("for", "0s"))
                    return float(text[:-1]) * units[text[-1]]
    raise AssertionError(f"no alert {name} in prometheus/rules/")


@pytest.fixture
def scraped(services: Services, settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    if services.run_dir is None or services.prometheus_url is None:
        pytest.skip("external Prometheus (SALESPULSE_PROMETHEUS_URL): cannot add a target")
    # The floor's morning is ahead of the wall clock (``_morning``), up to a weekend away:
    # the worker takes events dated that far ahead.
    ahead = {"idle_close_s": 5.0, "future_tolerance_s": AHEAD_OF_THE_WALL_CLOCK}
    settings = settings.model_copy(update=ahead)
    with running_worker(settings, tmp_path / "worker.log"):
        target = register_target(
            services.run_dir, f"test-{settings.web_port}", f"127.0.0.1:{settings.web_port}"
        )
        try:
            yield settings
        finally:
            target.unlink(missing_ok=True)


@pytest.mark.alert_rule_wait
@pytest.mark.timeout(900)
def test_panels_have_data_and_the_conversion_dip_fires_the_alert(
    services: Services, scraped: Settings
) -> None:
    settings, prometheus = scraped, str(services.prometheus_url)
    messages = _floor_with_a_dip(settings)
    produce(settings, messages)
    started = time.monotonic()
    # The worker has taken in the whole morning: stream time is at its last minutes.
    last = max(t for _, _, v in messages if (t := event_time(v)) is not None)
    eventually(
        lambda: (
            worker_metric(settings.web_port, "salespulse_stream_time_seconds")
            >= last.timestamp() - 120
        ),
        timeout=400,
        interval=2,
    )
    # ... and Prometheus has scraped it since.
    instance = f"127.0.0.1:{settings.web_port}"
    eventually(
        lambda: _query(
            prometheus, f'salespulse_win_rate_ratio{{instance="{instance}",window="1h"}}'
        ),
        timeout=60,
        interval=2,
    )
    dip = _query(prometheus, 'salespulse:win_rate:ratio_1h{dimension="global"}')
    month = _query(prometheus, 'salespulse:win_rate:ratio_month{dimension="global"}')
    print(f"win rate: last hour {dip}, month {month}")

    empty = [
        f"{uid} / {title}: {expr}"
        for uid, title, expr in panel_queries()
        if not _query(prometheus, expr)
    ]
    assert not empty, "panel queries without data:\n" + "\n".join(empty)

    for_s = _for_seconds(ALERT)
    deadline = time.monotonic() + for_s + 60
    states: list[str] = []
    while time.monotonic() < deadline:
        states = [a["state"] for a in _alerts(prometheus) if a["labels"].get("alertname") == ALERT]
        if "firing" in states:
            break
        time.sleep(5)
    waited = time.monotonic() - started
    assert "firing" in states, (
        f"{ALERT} not firing {waited:.0f} s after the dip was produced (for: {for_s:.0f} s); "
        f"states {states}; last hour {dip}, month {month}"
    )
    print(f"{ALERT} firing {waited:.0f} s after the stream was produced (for: {for_s:.0f} s)")
