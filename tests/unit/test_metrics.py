"""streams.observability.metrics: PipelineStats exported through a fresh CollectorRegistry per test."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.observability.metrics import PipelineCollector, PipelineStats

Event = tuple[str, str, float]  # topic, type, event time


def registry_of(stats: PipelineStats) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PipelineCollector(stats))
    return registry


@pytest.mark.parametrize(
    "events",
    [
        [],
        [("sales.orders", "order.placed", 1.0)],
        [
            ("sales.orders", "order.placed", 1.0),
            ("sales.orders", "order.placed", 2.0),
            ("sales.calls", "call.logged", 3.0),
        ],
        [
            ("sales.opportunities", "opportunity.opened", 5.0),
            ("sales.opportunities", "opportunity.lost", 6.0),
            ("sales.opportunities", "opportunity.opened", 4.0),
            ("sales.cancellations", "order.cancelled", 7.0),
        ],
    ],
)
def test_events_total_per_topic_and_type(events: list[Event]) -> None:
    stats = PipelineStats()
    registry = registry_of(stats)
    for topic, event_type, ts in events:
        stats.event(topic, event_type, ts)
    expected = Counter((topic, event_type) for topic, event_type, _ in events)
    for (topic, event_type), count in expected.items():
        labels = {"topic": topic, "type": event_type}
        assert registry.get_sample_value("salespulse_events_total", labels) == count
    assert (
        registry.get_sample_value(
            "salespulse_events_total", {"topic": "sales.orders", "type": "never.seen"}
        )
        is None
    )


def test_collector_reads_the_stats_at_scrape_time() -> None:
    stats = PipelineStats()
    registry = registry_of(stats)
    labels = {"topic": "sales.orders", "type": "order.placed"}
    assert registry.get_sample_value("salespulse_events_total", labels) is None
    stats.event("sales.orders", "order.placed", 10.0)
    assert registry.get_sample_value("salespulse_events_total", labels) == 1
    stats.event("sales.orders", "order.placed", 11.0)
    assert registry.get_sample_value("salespulse_events_total", labels) == 2


@pytest.mark.parametrize(
    ("attribute", "metric", "label", "values"),
    [
        ("dead_letters", "salespulse_dead_letters_total", "reason",
         ["not_json", "not_json", "unsupported_currency", "too_large", "not_json"]),
        ("duplicates", "salespulse_duplicate_events_total", "type",
         ["order.placed", "call.logged", "order.placed"]),
        ("unknown_fields", "salespulse_unknown_fields_total", "type", ["order.placed"]),
        ("reference_misses", "salespulse_reference_misses_total", "kind",
         ["rep", "product", "product", "account", "product"]),
    ],
)  # fmt: skip
def test_single_label_counters(attribute: str, metric: str, label: str, values: list[str]) -> None:
    stats = PipelineStats()
    registry = registry_of(stats)
    counts: Counter[str] = getattr(stats, attribute)
    for value in values:
        counts[value] += 1
    for value in set(values):
        assert registry.get_sample_value(metric, {label: value}) == values.count(value)
    assert registry.get_sample_value(metric, {label: "absent"}) is None


def test_no_counter_leaks_into_another() -> None:
    stats = PipelineStats()
    registry = registry_of(stats)
    stats.dead_letters["not_json"] += 3
    assert registry.get_sample_value("salespulse_dead_letters_total", {"reason": "not_json"}) == 3
    for metric, label in [
        ("salespulse_duplicate_events_total", "type"),
        ("salespulse_unknown_fields_total", "type"),
        ("salespulse_reference_misses_total", "kind"),
    ]:
        assert registry.get_sample_value(metric, {label: "not_json"}) is None


def test_last_event_timestamp_absent_before_any_event() -> None:
    registry = registry_of(PipelineStats())
    assert registry.get_sample_value("salespulse_last_event_timestamp_seconds") is None
    names = {family.name for family in registry.collect()}
    assert "salespulse_last_event_timestamp_seconds" not in names
    assert "salespulse_events" in names  # the counters are exported, empty, from the start


@pytest.mark.parametrize(
    ("timestamps", "newest"),
    [
        ([1_790_000_000.0], 1_790_000_000.0),
        ([100.0, 200.0, 300.0], 300.0),
        ([300.0, 100.0, 200.0], 300.0),  # late events do not move it back
        ([200.0, 300.0, 250.0, 299.5], 300.0),
        ([0.0], 0.0),  # the epoch is a time, not "no event"
        ([0.0, -5.0], 0.0),
        ([1_790_000_000.25, 1_790_000_000.5], 1_790_000_000.5),
    ],
)
def test_last_event_timestamp_keeps_the_newest(timestamps: list[float], newest: float) -> None:
    stats = PipelineStats()
    registry = registry_of(stats)
    for ts in timestamps:
        stats.event("sales.orders", "order.placed", ts)
    assert registry.get_sample_value("salespulse_last_event_timestamp_seconds") == newest


@given(st.lists(st.floats(0, 4e9, allow_nan=False), min_size=1, max_size=50))
def test_last_event_timestamp_is_the_maximum(timestamps: list[float]) -> None:
    stats = PipelineStats()
    registry = registry_of(stats)
    for ts in timestamps:
        stats.event("t", "x", ts)
    assert registry.get_sample_value("salespulse_last_event_timestamp_seconds") == max(timestamps)


def test_exposition_text_round_trips() -> None:
    stats = PipelineStats()
    registry = registry_of(stats)
    stats.event("sales.orders", "order.placed", 1_790_000_000.0)
    stats.event("sales.orders", "order.placed", 1_790_000_001.0)
    stats.dead_letters['odd "reason"\nwith newline'] += 1
    families = {
        family.name: family
        for family in text_string_to_metric_families(generate_latest(registry).decode())
    }
    assert families["salespulse_events"].type == "counter"
    assert families["salespulse_last_event_timestamp_seconds"].type == "gauge"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    key = ("salespulse_events_total", (("topic", "sales.orders"), ("type", "order.placed")))
    assert samples[key] == 2
    odd = ("salespulse_dead_letters_total", (("reason", 'odd "reason"\nwith newline'),))
    assert samples[odd] == 1
    assert samples[("salespulse_last_event_timestamp_seconds", ())] == 1_790_000_001.0


def test_two_workers_stats_do_not_mix() -> None:
    first, second = PipelineStats(), PipelineStats()
    registry_a, registry_b = registry_of(first), registry_of(second)
    first.event("sales.orders", "order.placed", 5.0)
    labels = {"topic": "sales.orders", "type": "order.placed"}
    assert registry_a.get_sample_value("salespulse_events_total", labels) == 1
    assert registry_b.get_sample_value("salespulse_events_total", labels) is None
    assert registry_b.get_sample_value("salespulse_last_event_timestamp_seconds") is None


def test_latency_histogram_buckets_are_cumulative() -> None:
    stats = PipelineStats()
    registry = registry_of(stats)
    for seconds in (0.01, 0.3, 0.3, 7.0, 1000.0):
        stats.latency.observe(seconds)
    name = "salespulse_processing_latency_seconds"
    assert registry.get_sample_value(f"{name}_bucket", {"le": "0.05"}) == 1
    assert registry.get_sample_value(f"{name}_bucket", {"le": "0.5"}) == 3
    assert registry.get_sample_value(f"{name}_bucket", {"le": "10.0"}) == 4
    assert registry.get_sample_value(f"{name}_bucket", {"le": "+Inf"}) == 5
    assert registry.get_sample_value(f"{name}_count") == 5
    assert registry.get_sample_value(f"{name}_sum") == pytest.approx(1007.61)


def test_lag_stream_time_and_business_hours_are_read_at_scrape_time() -> None:
    lag = [("sales.calls", 0, 5)]
    open_now = [True]
    registry = CollectorRegistry()
    registry.register(
        PipelineCollector(
            PipelineStats(),
            lag=lambda: lag,
            stream_time=lambda: 1_700_000_000.5,
            business_hours=lambda: open_now[0],
        )
    )
    labels = {"topic": "sales.calls", "partition": "0"}
    assert registry.get_sample_value("salespulse_consumer_lag_messages", labels) == 5
    lag[0] = ("sales.calls", 0, 0)
    assert registry.get_sample_value("salespulse_consumer_lag_messages", labels) == 0
    assert registry.get_sample_value("salespulse_stream_time_seconds") == 1_700_000_000.5
    assert registry.get_sample_value("salespulse_business_hours") == 1
    open_now[0] = False
    assert registry.get_sample_value("salespulse_business_hours") == 0


def test_known_label_values_are_exported_at_zero_from_the_start() -> None:
    registry = registry_of(PipelineStats())
    assert registry.get_sample_value("salespulse_dead_letters_total", {"reason": "not_json"}) == 0
    late = {"kind": "minute", "role": "lead"}
    assert registry.get_sample_value("salespulse_late_events_total", late) == 0
    miss = {"kind": "product"}
    assert registry.get_sample_value("salespulse_reference_misses_total", miss) == 0
