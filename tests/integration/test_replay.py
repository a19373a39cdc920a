"""Replay of the real CRM export into a real broker and worker: counted once, even twice."""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from streams.replay.command import run_ref_load, run_replay
from streams.settings import Settings
from tests.kafka_tools import kcat_consume, needs_kcat, worker_metric
from tests.support import REPO, eventually, revenue_by_rep, running_worker

EXPORT = REPO.parent / "shared" / "datasets" / "crm-sales-opportunities"
MAPPING = REPO / "examples" / "crm-sales-opportunities" / "mapping.yaml"
needs_export = pytest.mark.skipif(
    not (EXPORT / "sales_pipeline.csv").is_file(),
    reason=f"the CRM export is not at {EXPORT} (it is read from ../shared, never copied)",
)


def won_revenue_by_day_and_rep() -> dict[tuple[date, str], Decimal]:
    """Revenue of the Won rows per close date (a business-local date) and agent, from the CSV."""
    totals: Counter[tuple[date, str]] = Counter()
    with (EXPORT / "sales_pipeline.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["deal_stage"] == "Won":
                key = (date.fromisoformat(row["close_date"]), row["sales_agent"])
                totals[key] += Decimal(row["close_value"])  # type: ignore[assignment]
    return dict(totals)


@needs_export
@needs_kcat
@pytest.mark.timeout(900)  # two replays of 15,011 events through the whole engine
def test_replay_twice_counts_every_event_once(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # Keep every day window of the export: it spans 15 months of event time, and the default
    # 90-day retention would rightly remove the first year's days (retention counts event
    # time only: the wall clock removes nothing, tests/integration/kpi/test_reference_crm.py).
    settings = settings.model_copy(update={"retention_day_s": 20 * 365 * 86_400.0})
    args = argparse.Namespace(mapping=MAPPING, dump=False, paths=[EXPORT], rate=None, dry_run=False)
    assert run_replay(settings, args) == 0
    summary = capsys.readouterr().out
    assert "order.placed" in summary
    assert "15138" in summary  # every record of the export (events and references)

    with running_worker(settings, tmp_path / "worker.log"):

        def processed() -> float:
            return sum(
                worker_metric(settings, "salespulse_events_applied_total", type=t)
                for t in ("opportunity.opened", "order.placed", "opportunity.lost")
            )

        eventually(lambda: processed() == 15011, timeout=400, interval=1)
        assert worker_metric(settings, "salespulse_reference_misses_total", kind="rep") == 0
        assert worker_metric(settings, "salespulse_reference_misses_total", kind="product") == 0

        # Same export again: same event ids, so nothing is added.
        assert run_replay(settings, args) == 0
        eventually(
            lambda: worker_metric(settings, "salespulse_duplicate_events_total", type="order.placed")
            == 4238,
            timeout=400, interval=1,
        )  # fmt: skip
        assert processed() == 15011

        expected = won_revenue_by_day_and_rep()

        def redis_revenue() -> dict[tuple[date, str], Decimal]:
            got: dict[tuple[date, str], Decimal] = {}
            for day in {day for day, _ in expected}:
                got |= {(day, k): v for k, v in revenue_by_rep(settings, day).items()}
            return got

        # The entity stage counts an event applied before the publisher has written Redis:
        # under load the read model trails the counter for a while.
        got: dict[tuple[date, str], Decimal] = {}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and (got := redis_revenue()) != expected:
            time.sleep(2)
        assert got == expected


@needs_kcat
def test_ref_load_sends_valid_rows_and_reports_the_others(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reps = tmp_path / "reps.csv"
    reps.write_text("rep_id,name,team,region,active\nana,Ana,North,Paris,true\n,Nobody,,,\n")
    products = tmp_path / "products.csv"
    products.write_text("product_id,name,list_price,aliases\nGTX Pro,GTX Pro,4821,GTXPro;GTX-PRO\n")
    assert run_ref_load(settings, argparse.Namespace(kind="reps", file=reps)) == 1
    assert "rep_id" in capsys.readouterr().out  # the invalid row, with its reason
    assert run_ref_load(settings, argparse.Namespace(kind="products", file=products)) == 0
    sent = kcat_consume(settings, "ref.reps")
    assert [m["key"] for m in sent] == ["ana"]
    (product,) = kcat_consume(settings, "ref.products")
    assert product["key"] == "GTX Pro"
    assert '"aliases":["GTXPro","GTX-PRO"]' in str(product["payload"])
