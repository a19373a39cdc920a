"""Alerts reach people: the conversion-dip incident, through a real Prometheus and a real
Alertmanager, arrives at a webhook as one grouped notification, and so does its resolution.

The test runs its own Prometheus and Alertmanager (``streams.stack``, as ``stack up`` starts
them) so that no other test's worker or alert can join its groups: Prometheus loads the
shipped ``prometheus/prometheus.yml`` and rules (addresses rewritten, as for every local
stack), Alertmanager the shipped ``prometheus/alertmanager.yml`` with two changes only, checked
below: the webhook's URL is the receiver of this test, and ``group_interval`` (how long
Alertmanager waits before it tells a group's news, here the resolution) is 30 s instead of 5
minutes, to keep the test minutes shorter. The rule's ``for`` and the route's ``group_wait``
are the shipped ones, and the notification must arrive within their sum.

The floor (``morning_with_a_dip``) is simulated from the next weekday's 09:00 on an
accelerated clock (x60), with the month so far booked: two hours of a normal morning, then an
hour of ``conversion-dip`` (11:00-12:00 in event time), sent at once; once the notification is
in, the time after the dip (12:00-13:20) is sent, and the last hour's win rate is the floor's
own again.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from streams.settings import Settings
from streams.stack.alertmanager import start_alertmanager
from streams.stack.launcher import alertmanager_config, prometheus_config
from streams.stack.ports import HOST, free_port
from streams.stack.process import ProcessRecord, log_tail
from streams.stack.prometheus import register_target, start_prometheus
from tests.kpi_tools import (
    AHEAD_OF_THE_WALL_CLOCK,
    Message,
    event_time,
    morning_with_a_dip,
    produce,
)
from tests.support import REPO, eventually, isolated_settings, running_worker, worker_metric
from tests.support import Services as SessionServices

ALERT = "SalespulseWinRateDip"
GLOBAL_GROUP = {"alertname": ALERT, "dimension": "global", "key": "all"}
GROUP_INTERVAL = "30s"  # shipped: 5m (see the module's docstring)
SLACK_S = 20.0  # a Prometheus evaluation (5 s) and scrape (5 s), and the hand-overs
SUMMARY = re.compile(
    r"^The whole floor: win rate \d+(\.\d+)?% in the last hour vs \d+(\.\d+)?% this month\.$"
)


def seconds(text: str) -> float:
    """``30s``, ``5m``, ``1h`` -> seconds."""
    return float(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]


def rule_for_s(name: str) -> float:
    for path in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == name:
                    return seconds(str(rule["for"]))
    raise AssertionError(f"no alert {name} in prometheus/rules/")


# --- a webhook receiver, and the shipped routing pointed at it ----------------------------


@dataclass
class Notification:
    received: float  # time.time()
    body: dict[str, Any]

    @property
    def group(self) -> dict[str, str]:
        return dict(self.body["groupLabels"])


@dataclass
class Webhook:
    """An HTTP server that keeps every POSTed Alertmanager notification."""

    server: ThreadingHTTPServer
    notifications: list[Notification] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/salespulse-alerts"

    def of(self, group: dict[str, str]) -> list[Notification]:
        return [n for n in list(self.notifications) if n.group == group]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    received: list[Notification] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(Notification(time.time(), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((HOST, free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Webhook(server, received)
    finally:
        server.shutdown()
        server.server_close()


def default_hook(config: dict[str, Any]) -> dict[str, Any]:
    """The webhook of the route's default receiver (the shipped config has one)."""
    (receiver,) = [r for r in config["receivers"] if r["name"] == config["route"]["receiver"]]
    (hook,) = receiver["webhook_configs"]
    return dict(hook)


def routing_for(webhook_url: str) -> dict[str, Any]:
    """The shipped ``alertmanager.yml`` with the webhook's URL and ``group_interval`` changed."""
    shipped = yaml.safe_load(alertmanager_config().read_text())
    config = copy.deepcopy(shipped)
    (receiver,) = [r for r in config["receivers"] if r["name"] == config["route"]["receiver"]]
    receiver["webhook_configs"][0]["url"] = webhook_url
    config["route"]["group_interval"] = GROUP_INTERVAL
    # Nothing else differs from what ships.
    assert default_hook(config) == {**default_hook(shipped), "url": webhook_url}
    assert {**config["route"], "group_interval": shipped["route"]["group_interval"]} == shipped[
        "route"
    ]
    others = [r for r in config["receivers"] if r is not receiver]
    assert others == [r for r in shipped["receivers"] if r["name"] != receiver["name"]]
    assert {k: v for k, v in config.items() if k not in ("route", "receivers")} == {
        k: v for k, v in shipped.items() if k not in ("route", "receivers")
    }
    return config


@dataclass
class Alerting:
    run_dir: Path
    prometheus: str  # base URL
    alertmanager: str
    webhook: Webhook
    shipped_route: dict[str, Any]
    processes: list[tuple[ProcessRecord, Path]]

    def prometheus_alerts(self) -> list[dict[str, Any]]:
        return get(f"{self.prometheus}/api/v1/alerts")["data"]["alerts"]


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return orjson.loads(response.read())


@pytest.fixture
def alerting(tmp_path: Path, webhook: Webhook) -> Iterator[Alerting]:
    run_dir = tmp_path / "alerting"
    run_dir.mkdir()
    routing = run_dir / "alertmanager.yml"
    routing.write_text(yaml.safe_dump(routing_for(webhook.url), sort_keys=False))
    am_port, prom_port = free_port(), free_port()
    am = start_alertmanager(run_dir, routing, am_port, die_with_parent=True)
    processes = [(am, run_dir / "alertmanager.log")]
    try:
        prom = start_prometheus(
            run_dir, prometheus_config(), prom_port, die_with_parent=True,
            alertmanager=f"{HOST}:{am_port}",
        )  # fmt: skip
        processes.append((prom, run_dir / "prometheus.log"))
        shipped = yaml.safe_load(alertmanager_config().read_text())["route"]
        yield Alerting(
            run_dir, f"http://{HOST}:{prom_port}", f"http://{HOST}:{am_port}", webhook, shipped,
            processes,
        )  # fmt: skip
    finally:
        for process, _ in reversed(processes):
            process.stop()


# --- the floor ----------------------------------------------------------------------------


def caught_up(settings: Settings, messages: list[Message], timeout: float) -> None:
    """Until the worker's stream time is within two minutes of the last event sent."""
    last = max(t for _, _, v in messages if (t := event_time(v)) is not None)
    eventually(
        lambda: (
            worker_metric(settings.web_port, "salespulse_stream_time_seconds")
            >= last.timestamp() - 120
        ),
        timeout=timeout,
        interval=2,
    )


def statuses(notifications: list[Notification]) -> list[str]:
    return [n.body["status"] for n in notifications]


# --- the test -----------------------------------------------------------------------------


@pytest.mark.alert_rule_wait
@pytest.mark.timeout(1200)
def test_conversion_dip_notifies_once_per_group_then_its_resolution(
    services: SessionServices, alerting: Alerting, tmp_path: Path
) -> None:
    settings = isolated_settings(
        services, tmp_path, idle_close_s=5.0, future_tolerance_s=AHEAD_OF_THE_WALL_CLOCK
    )
    before, after = morning_with_a_dip(settings, after_dip=timedelta(hours=1, minutes=20))
    for_s = rule_for_s(ALERT)
    group_wait_s = seconds(alerting.shipped_route["group_wait"])
    hook = alerting.webhook
    with running_worker(settings, tmp_path / "worker.log"):
        register_target(alerting.run_dir, "worker", f"127.0.0.1:{settings.web_port}")
        produce(settings, before)
        caught_up(settings, before, timeout=400)

        # Prometheus: pending from the first evaluation that sees the dip, firing `for` later.
        def firing() -> dict[str, Any] | None:
            for alert in alerting.prometheus_alerts():
                labels = alert["labels"]
                if labels["alertname"] == ALERT and labels.get("dimension") == "global":
                    return alert if alert["state"] == "firing" else None
            return None

        fired = eventually(firing, timeout=for_s + 120, interval=2)
        active_at = datetime.fromisoformat(fired["activeAt"].replace("Z", "+00:00")).timestamp()

        # One notification for the whole floor's group, within `for` + `group_wait`.
        deadline = active_at + for_s + group_wait_s + SLACK_S
        first = eventually(lambda: hook.of(GLOBAL_GROUP), timeout=deadline - time.time() + 5)
        (notification,) = first
        assert notification.received <= deadline, (
            f"notified {notification.received - active_at:.0f} s after the alert went pending "
            f"(for {for_s:.0f} s + group_wait {group_wait_s:.0f} s)"
        )
        body = notification.body
        assert body["status"] == "firing"
        assert body["receiver"] == "webhook"
        (alert,) = body["alerts"]  # grouped: the whole floor's dip, once
        assert alert["labels"]["severity"] == "warning"
        assert SUMMARY.match(alert["annotations"]["summary"]), alert["annotations"]["summary"]
        print(
            f"notified {notification.received - active_at:.0f} s after pending: "
            f"{alert['annotations']['summary']}"
        )

        # The dip ends: the hour after it is normal; Prometheus resolves, Alertmanager tells.
        produce(settings, after)
        caught_up(settings, after, timeout=400)
        eventually(lambda: firing() is None, timeout=120, interval=2)
        resolved_at = time.time()
        notes = eventually(
            lambda: (n := hook.of(GLOBAL_GROUP)) and len(n) >= 2 and n,
            timeout=seconds(GROUP_INTERVAL) + SLACK_S + 30,
        )
        assert statuses(notes) == ["firing", "resolved"]
        assert notes[1].received - resolved_at <= seconds(GROUP_INTERVAL) + SLACK_S
        (gone,) = notes[1].body["alerts"]
        assert gone["status"] == "resolved"
        assert gone["labels"] == alert["labels"]

    # Every group of the alert (the floor's, and any team's) was told once, and its end once.
    groups = {tuple(sorted(n.group.items())) for n in hook.notifications}
    groups = {group for group in groups if ("alertname", ALERT) in group}
    for group in groups:
        told = statuses(hook.of(dict(group)))
        assert told.count("firing") == 1, (group, told)
        assert told in (["firing"], ["firing", "resolved"]), (group, told)
    for process, log in alerting.processes:
        assert process.alive(), log_tail(log)
