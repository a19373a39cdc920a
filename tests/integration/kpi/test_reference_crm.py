"""The engine against the reference on the real CRM export (../shared, never copied).

The export is replayed through `salespulse replay` (8,300 openings, 4,238 won, 2,473 lost,
2016-2017) and every KPI by month and by rep, team, region and globally must equal the
reference implementation's, computed over the very messages the replay sent.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from streams.ingest.validate import Limits
from streams.replay.command import run_replay
from streams.replay.mapping import load_mapping
from streams.replay.transform import Output, files_of, in_replay_order, transform_file
from streams.settings import Settings
from tests.kafka_tools import needs_kcat
from tests.kpi_tools import (
    Message,
    engine_results,
    get_history,
    history_mismatches,
    mismatches,
    reference_results,
    settled,
    wait_for_stream_time,
)
from tests.support import REPO, running_worker

EXPORT = REPO.parent / "shared" / "datasets" / "crm-sales-opportunities"
MAPPING = REPO / "examples" / "crm-sales-opportunities" / "mapping.yaml"

pytestmark = [
    needs_kcat,
    pytest.mark.skipif(
        not (EXPORT / "sales_pipeline.csv").is_file(),
        reason=f"the CRM export is not at {EXPORT} (it is read from ../shared, never copied)",
    ),
]


def replayed_messages(settings: Settings) -> tuple[list[Message], list[Message]]:
    """(reference records, events) exactly as `salespulse replay` sends them, in order."""
    mapping = load_mapping(MAPPING)
    limits = Limits(settings.max_event_bytes, settings.currency, dict(settings.fx_rates))
    items = in_replay_order(
        item
        for source, path in files_of(mapping, [EXPORT])
        for _line, item in transform_file(mapping, source, path, settings.zone, limits)
    )
    reference: list[Message] = []
    events: list[Message] = []
    for item in items:
        if not isinstance(item, Output):
            continue
        message = (item.topic, item.key.encode(), orjson.dumps(item.value))
        (reference if item.topic.startswith("ref.") else events).append(message)
    return reference, events


@pytest.mark.timeout(1500)
def test_crm_export_by_month_matches_the_reference(tmp_path: Path, settings: Settings) -> None:
    # Default retention: the export (2016-2017) is years older than the wall clock, and
    # retention counts event time only, so an idle worker keeps every month of it.
    settings = settings.model_copy(update={"idle_close_s": 10.0})
    assert settings.retention_calendar_s == Settings().retention_calendar_s
    args = argparse.Namespace(mapping=MAPPING, dump=False, paths=[EXPORT], rate=None, dry_run=False)
    assert run_replay(settings, args) == 0
    replayed = time.monotonic()
    reference, events = replayed_messages(settings)
    assert len(events) == 15011
    dims = ("global", "rep", "team", "region")
    with running_worker(settings, tmp_path / "worker.log"):
        engine = settled(settings, timeout=900, quiet_s=10)
        expected = reference_results(settings, reference, events, now=datetime.now(UTC))
        problems = mismatches(engine, expected, ("month",), dims)
        assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:25])
        # Idle: stream time moves to the wall clock (windows close on it), and a minute
        # later, at least five minutes after the replay, every month is still there.
        wait_for_stream_time(settings, datetime.now(UTC) - timedelta(minutes=1), timeout=120)
        time.sleep(max(60.0, 300 - (time.monotonic() - replayed)))
        later = engine_results(settings)
        problems = mismatches(later, expected, ("month",), dims)
        assert not problems, f"after idling, {len(problems)} differences:\n" + "\n".join(
            problems[:25]
        )
        histories = [
            get_history(settings, kpi, window="month", by=dim, **{"from": "2016-10"}, to="2017-12")
            for kpi in ("revenue", "win_rate", "opportunities_opened")
            for dim in ("global", "rep")
        ]
    months = {key[2] for key in expected if key[1] == "month" and key[0] == "opportunities_opened"}
    assert len(months) >= 12, months  # opened from October 2016 to December 2017
    # GET /api/kpis/{kpi}/history: the 15 months in one answer each, as the reference.
    problems = [
        p for h in histories for p in history_mismatches(h, expected, ("2016-10", "2017-12"))
    ]
    assert not problems, f"{len(problems)} history differences:\n" + "\n".join(problems[:25])
