"""The bench's backlog is the floor's past, and a run that dead-letters more than the
backlog's invalid messages is not a throughput figure (bench/events.py, bench/run.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from bench import events, run
from streams.settings import Settings
from streams.simulator.produce import plan
from streams.simulator.timeline import REFERENCE


def newest(settings: Settings, count: int, start: datetime) -> datetime:
    _, records = plan(settings, events.OPTIONS, start)
    times = (r.event_time for r in records if r.kind != REFERENCE)
    return max(t for _, t in zip(range(count), times, strict=False))


def test_a_backlog_started_a_span_ago_ends_now() -> None:
    settings = Settings()
    now = datetime.now(settings.zone)
    span = events.span(settings, 20_000, now)
    assert span > timedelta(seconds=settings.future_tolerance_s)  # started now: dead letters
    assert abs(newest(settings, 20_000, now - span) - now) < timedelta(seconds=1)


def page(counts: dict[str, int]) -> bytes:
    registry = CollectorRegistry()
    counter = Counter("salespulse_dead_letters", "dead letters", ["reason"], registry=registry)
    for reason, count in counts.items():
        counter.labels(reason=reason).inc(count)
    return generate_latest(registry)


def test_dead_letters_are_read_from_the_metrics_page() -> None:
    counts = {"future_dated": 3, "not_json": 2}
    assert run.dead_letters(page(counts)) == counts
    assert run.dead_letters(page({})) == {}


def test_a_run_that_dead_letters_valid_events_is_refused() -> None:
    run.check_dead_letters({"not_json": 2, "missing_field": 3}, 5)
    with pytest.raises(RuntimeError, match="future_dated"):
        run.check_dead_letters({"not_json": 2, "future_dated": 4_000}, 2)
