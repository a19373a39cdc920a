"""A valid event a stage after the ingest fails to apply is not lost without a trace: it is in
sales.deadletter with the stage and the error, counted, alerted on, and once the worker is
fixed the copy sent again counts (the failed attempt left nothing behind).

The fault is planted by monkeypatching inside a real worker process
(tests/integration/faulty_worker.py): no valid input makes a stage raise today, and the
product has no test-only switch. Everything else is the real stack.
"""

from __future__ import annotations

import asyncio
import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.settings import Settings
from streams.stack.launcher import prometheus_config
from streams.stack.ports import HOST, free_port
from streams.stack.prometheus import register_target, start_prometheus
from streams.topics import ensure_topics
from tests.integration.test_ingest import order, revenue
from tests.kafka_tools import header, kcat_consume, kcat_produce, needs_kcat, worker_metric
from tests.support import eventually, running_worker

pytestmark = needs_kcat


def faulty_worker(stage: str, marker: str) -> list[str]:
    return [sys.executable, "-m", "tests.integration.faulty_worker", stage, marker]


def stage_errors(settings: Settings) -> list[dict[str, Any]]:
    return [
        m for m in kcat_consume(settings, "sales.deadletter")
        if header(m, "reason") == "stage_error"
    ]  # fmt: skip


def sent(settings: Settings, topic: str, raw: bytes) -> dict[str, Any]:
    """The message of ``topic`` whose value is ``raw`` (its partition and offset)."""
    (message,) = [m for m in kcat_consume(settings, topic) if m["payload"] == raw.decode()]
    return message


@pytest.fixture
def scraped(tmp_path: Path, settings: Settings) -> Iterator[str]:
    """A Prometheus of this test's own, with the shipped rules, scrapes this test's worker;
    yields its URL.

    Not the session's: the alert this test raises on purpose keeps firing for 15 minutes, and
    through the session's Alertmanager it would be the banner of every wallboard test after
    this one. Its alerts go nowhere (no Alertmanager listens on the port it is given).
    """
    run_dir = tmp_path / "prometheus"
    run_dir.mkdir()
    nowhere, port = free_port(), free_port()
    process = start_prometheus(
        run_dir, prometheus_config(), port, die_with_parent=True, alertmanager=f"{HOST}:{nowhere}"
    )
    try:
        register_target(run_dir, "stage-errors", f"127.0.0.1:{settings.web_port}")
        yield f"http://{HOST}:{port}"
    finally:
        process.stop()


def firing(prometheus_url: str, alert: str, **labels: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/alerts", timeout=10) as response:
        alerts = orjson.loads(response.read())["data"]["alerts"]
    return [
        a for a in alerts
        if a["state"] == "firing" and a["labels"].get("alertname") == alert
        and all(a["labels"].get(k) == v for k, v in labels.items())
    ]  # fmt: skip


def test_an_event_the_entity_stage_fails_on_is_dead_lettered_alerted_and_counts_once_resent(
    tmp_path: Path, settings: Settings, scraped: str
) -> None:
    asyncio.run(ensure_topics(settings))
    now = datetime.now(settings.zone)
    poison = orjson.dumps(order("rep-poison", "7.00", now, account_id="acct-2"))
    worker = faulty_worker("entity-stage", "rep-poison")
    with running_worker(settings, tmp_path / "faulty.log", worker) as process:
        kcat_produce(settings, "sales.orders", "acct-1", orjson.dumps(order("rep-a", "10.00", now)))
        kcat_produce(settings, "sales.orders", "acct-2", poison)
        kcat_produce(settings, "sales.orders", "acct-1", orjson.dumps(order("rep-a", "5.50", now)))

        eventually(lambda: revenue(settings, now) == {"rep-a": Decimal("15.50")})
        (letter,) = eventually(lambda: stage_errors(settings))
        source = sent(settings, "sales.orders", poison)
        assert letter["payload"] == poison.decode()  # the input as it was sent, byte for byte
        assert letter["key"] == settings.topic("sales.orders")
        assert header(letter, "source_topic") == settings.topic("sales.orders")
        assert header(letter, "source_partition") == str(source["partition"])
        assert header(letter, "source_offset") == str(source["offset"])
        assert header(letter, "stage") == "entity-stage"
        assert header(letter, "role") == "event"
        assert header(letter, "error").startswith("PlantedFault: planted in the entity stage")
        assert "send this message again to" in header(letter, "detail")
        assert worker_metric(settings, "salespulse_stage_errors_total", stage="entity-stage") == 1
        assert worker_metric(settings, "salespulse_stage_errors_total", stage="publisher") == 0
        assert worker_metric(settings, "salespulse_dead_letters_total") == 0  # the input was valid
        # The alert, from the shipped rules, through the session's real Prometheus.
        alert = eventually(
            lambda: firing(scraped, "SalespulseStageErrors", stage="entity-stage"), timeout=150
        )
        assert alert[0]["labels"]["severity"] == "critical"
        assert process.alive()  # never restarted: the same process all along

    # The worker fixed (the real one, same state), the dead letter sent again: it counts once.
    with running_worker(settings, tmp_path / "fixed.log"):
        kcat_produce(settings, "sales.orders", "acct-2", letter["payload"].encode())
        eventually(
            lambda: (
                revenue(settings, now) == {"rep-a": Decimal("15.50"), "rep-poison": Decimal("7.00")}
            )
        )
        assert worker_metric(settings, "salespulse_duplicate_events_total") == 0
        assert worker_metric(settings, "salespulse_events_applied_total") == 1


def test_a_cell_message_the_publisher_fails_on_is_dead_lettered_and_the_rest_published(
    tmp_path: Path, settings: Settings
) -> None:
    asyncio.run(ensure_topics(settings))
    now = datetime.now(settings.zone)
    worker = faulty_worker("publisher", "rep-venom")
    with running_worker(settings, tmp_path / "faulty.log", worker) as process:
        kcat_produce(settings, "sales.orders", "acct-1", orjson.dumps(order("rep-a", "10.00", now)))
        kcat_produce(
            settings, "sales.orders", "acct-2", orjson.dumps(order("rep-venom", "3.00", now))
        )
        kcat_produce(settings, "sales.orders", "acct-1", orjson.dumps(order("rep-a", "5.50", now)))
        eventually(lambda: revenue(settings, now) == {"rep-a": Decimal("15.50")})
        letters = eventually(lambda: stage_errors(settings))
        eventually(
            lambda: (
                worker_metric(settings, "salespulse_stage_errors_total", stage="publisher")
                == len(stage_errors(settings))
            )
        )
        cells_messages = {
            (m["partition"], m["offset"]): m["payload"]
            for m in kcat_consume(settings, "internal.cells")
        }
        for letter in stage_errors(settings):
            assert header(letter, "stage") == "publisher"
            assert header(letter, "error").startswith("PlantedFault: planted in the publisher")
            assert header(letter, "source_topic") == settings.topic("internal.cells")
            where = (int(header(letter, "source_partition")), int(header(letter, "source_offset")))
            assert cells_messages[where] == letter["payload"]  # the message, byte for byte
            cells = orjson.loads(str(letter["payload"]))["cells"]
            assert {cell.split("|", 2)[2] for cell, _, _ in cells} == {"rep|rep-venom"}
        assert letters
        assert worker_metric(settings, "salespulse_stage_errors_total", stage="entity-stage") == 0
        assert process.alive()
